#!/usr/bin/env python
"""Static SASS figures of a CUDA kernel file for one architecture (sm_90 by default).

Compiles the .cu file to a cubin with the build's own nvcc flags (read from
build/ninja/build.ninja when a build exists, else the same flags as setup.py
gives), with ptxas -v, disassembles it with cuobjdump and prints per kernel:
registers, stack frame and spill bytes, the total SASS instruction count, every
loop (a backward branch: its body is the instructions from the branch target to
the branch) and, for the loop taken as the steady state (the largest loop that
stores to global memory, or --loop N), its instructions per pixel:

    warp-instructions per pixel = steady-loop instructions / pixels a warp handles per iteration

The pixels per warp-iteration are given per kernel name below (PIXELS) or with
--pixels; without them only the counts are printed. No GPU needed.

    python scripts/sass_counts.py                                  # the trio kernel file
    python scripts/sass_counts.py csrc/cuda/alpha_sobel_kernel.cu --arch sm_90 -k alpha_sobel_kernel
    python scripts/sass_counts.py --keep /tmp/sass                 # keep the cubin and the listing
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Pixels one warp handles per iteration of the steady loop, by a regular
# expression searched in the (demangled) kernel name, the first that matches.
# alpha_sobel_kernel: 30 lanes of 32 own 4 consecutive pixels of a row each
# (lanes 0 and 31 are the halo), one row per iteration, 4 rows in the
# vector-only instances (7th template argument kVecOnly true: unrolled by 4)
# (csrc/cuda/alpha_sobel_kernel.cu).
PIXELS = [(r"alpha_sobel_kernel<(?:[^,<>]+, ){6}true,", 480), (r"alpha_sobel_kernel<", 120)]


def tool(name: str) -> str:
    """nvcc from the toolkit; cuobjdump from it, or the one triton ships."""
    cands = [os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", name), shutil.which(name)]
    import importlib.util
    spec = importlib.util.find_spec("triton")  # located, not imported
    if spec and spec.origin:
        cands.append(os.path.join(os.path.dirname(spec.origin), "backends", "nvidia", "bin", name))
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit(f"sass_counts: {name} not found (set CUDA_HOME)")


def build_flags() -> list[str]:
    """nvcc flags of the build (includes, defines, -O3, -std), without its -gencode list."""
    ninja = os.path.join(ROOT, "build", "ninja", "build.ninja")
    flags: list[str] = []
    if os.path.isfile(ninja):
        text = open(ninja).read()
        for key in ("cuda_cflags", "cuda_post_cflags"):
            m = re.search(rf"^{key} = (.*)$", text, re.M)
            if m:
                flags += shlex.split(m.group(1))
    if not flags:  # setup.py's nvcc flags; the .cu files need no torch headers
        flags = ["-O3", "--expt-relaxed-constexpr", "-std=c++20", "-D__CUDA_NO_HALF_OPERATORS__",
                 "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
                 "-D__CUDA_NO_HALF2_OPERATORS__"]
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
            continue
        if f in ("-c", "--compiler-options", "-MD", "-MF"):
            skip = f in ("--compiler-options", "-MF")
            continue
        if f.startswith("-gencode") or f.startswith("--generate-code"):
            continue
        out.append(f)
    return out


def demangle(names: list[str]) -> dict[str, str]:
    cxxfilt = shutil.which("c++filt")
    if not cxxfilt or not names:
        return {n: n for n in names}
    res = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    return {n: (res[i] if i < len(res) and res[i] else n) for i, n in enumerate(names)}


def ptxas_info(log: str) -> dict[str, dict]:
    info: dict[str, dict] = {}
    cur = None
    for line in log.splitlines():
        m = re.search(r"Function properties for (\S+)", line) or re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            cur = m.group(1)
            info.setdefault(cur, {})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            info[cur].update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            info[cur]["regs"] = int(m.group(1))
    return info


INSN = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?);")


def parse_sass(listing: str) -> dict[str, list[tuple[int, str]]]:
    """Function name -> [(address, instruction text)], NOPs and the trailing self-branch dropped."""
    funcs: dict[str, list[tuple[int, str]]] = {}
    cur = None
    for line in listing.splitlines():
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
            continue
        if cur is None:
            continue
        m = INSN.search(line)
        if m:
            addr, text = int(m.group(1), 16), m.group(2).strip()
            if re.match(r"(@!?U?P\w+\s+)?NOP\b", text):
                continue
            funcs[cur].append((addr, text))
    for name, insns in funcs.items():  # drop the `BRA` to itself that ends every function
        while insns and re.search(r"\bBRA\b", insns[-1][1]) and _target(insns[-1][1]) == insns[-1][0]:
            insns.pop()
    return funcs


def _target(text: str) -> int | None:
    m = re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", text)
    return int(m.group(1), 16) if m else None


def loops(insns: list[tuple[int, str]]) -> list[tuple[int, int, int, bool]]:
    """(start, end, instructions, stores to global) of every loop: a predicated backward
    branch (an unconditional one is the return from out-of-line code, e.g. the
    WARPSYNC.COLLECTIVE fallback of a shuffle, to the code it was taken from)."""
    out = []
    for addr, text in insns:
        t = _target(text)
        if t is not None and t <= addr and re.match(r"@!?U?P\w+\s", text):
            body = [x for a, x in insns if t <= a <= addr]
            out.append((t, addr, len(body), any(re.search(r"\bSTG\b", x) for x in body)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", default=os.path.join(ROOT, "csrc", "cuda", "alpha_sobel_kernel.cu"))
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("-k", "--kernel", default="", help="only kernels whose demangled name contains this")
    ap.add_argument("--pixels", type=int, help="pixels a warp handles per steady-loop iteration (overrides PIXELS)")
    ap.add_argument("--loop", type=int, help="index of the loop to take as the steady state (as printed)")
    ap.add_argument("--loops", action="store_true", help="print every loop")
    ap.add_argument("--mix", help="per-pixel figure of a kernel whose pixels pass through several loops, one "
                    "element per thread per iteration: 'LOOP:ELEMENTS,...' (elements each loop covers per "
                    "block) with --block-pixels: sum(instructions * elements / 32) / block pixels")
    ap.add_argument("--block-pixels", type=int, help="pixels a block outputs (with --mix)")
    ap.add_argument("--keep", help="folder to keep the cubin and the SASS listing in")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="sass_counts_")
    os.makedirs(work, exist_ok=True)
    cubin = os.path.join(work, os.path.basename(args.source).replace(".cu", f".{args.arch}.cubin"))
    cmd = [tool("nvcc"), *build_flags(), f"-arch={args.arch}", "-cubin", "-Xptxas=-v", "-o", cubin, args.source]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        sys.stderr.write(" ".join(shlex.quote(c) for c in cmd) + "\n" + res.stdout + res.stderr)
        return 1
    info = ptxas_info(res.stdout + res.stderr)
    listing = subprocess.run([tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True, check=True).stdout
    if args.keep:
        open(cubin.replace(".cubin", ".sass"), "w").write(listing)
    funcs = parse_sass(listing)
    names = demangle(list(funcs))
    print(f"{os.path.relpath(args.source, ROOT)} for {args.arch}: cubin {os.path.getsize(cubin)} bytes")
    for mangled, insns in funcs.items():
        name = names[mangled]
        if args.kernel not in name:
            continue
        pi = info.get(mangled, {})
        found = loops(insns)
        m = re.search(r"::(\w+<[^()]*>)\(", name)
        print(f"\n{m.group(1) if m else name}")
        print(f"  registers {pi.get('regs', '?')}, stack {pi.get('stack', '?')} B, "
              f"spill stores {pi.get('spill_st', '?')} B, spill loads {pi.get('spill_ld', '?')} B, "
              f"SASS instructions {len(insns)}, loops {len(found)}")
        if args.loops:
            for i, (s, e, n, stg) in enumerate(found):
                print(f"    loop {i}: {s:#06x}..{e:#06x}  {n} instructions{'  (stores to global)' if stg else ''}")
        steady = None
        if args.loop is not None and args.loop < len(found):
            steady = found[args.loop]
        elif found:
            with_store = [lp for lp in found if lp[3]]
            steady = max(with_store or found, key=lambda lp: lp[2])
        if steady:
            pixels = args.pixels or next((v for k, v in PIXELS if re.search(k, name)), None)
            line = f"  steady loop {steady[0]:#06x}..{steady[1]:#06x}: {steady[2]} instructions"
            if pixels:
                line += f", {pixels} pixels per warp-iteration: {steady[2] / pixels:.2f} warp-instructions per pixel"
            print(line)
        if args.mix and args.block_pixels:
            total = 0.0
            for part in args.mix.split(","):
                i, n = (int(v) for v in part.split(":"))
                total += found[i][2] * n / 32
            print(f"  mix {args.mix} over {args.block_pixels} pixels: "
                  f"{total / args.block_pixels:.2f} warp-instructions per pixel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
