#!/usr/bin/env bash
# GPU validation in one command (issue #12; docs/gpu-check.md says how to run and read it):
#   1. build the extension in place for the visible GPU's architecture only
#   2. the CUDA tests (pytest -q -x), failing if any CUDA test was skipped
#   3. compute-sanitizer memcheck, racecheck, initcheck, synccheck over scripts/cuda_sanitize.py
#   4. bitwise determinism: every driver case 20 times on CUDA (and the >2^31-element case)
#   5. benchmarks/bench.py on the GPU
# (2-4 run at the same time: they only check results; the benchmark runs alone, last)
# and a summary table, printed last. Every log goes to OUTDIR (8 files at most:
# summary.txt summary.json env.txt build.log pytest.log sanitize.log determinism.log bench.tar.gz).
#
#   bash scripts/gpu_check.sh OUTDIR
#
# Without a GPU it builds the CPU kernels, runs the CPU twins of the CUDA tests and a CPU dry
# run of the driver, reports every GPU step as skipped and exits 2.
# Exit code: 0 every step passed on a GPU, 1 a step failed, 2 no GPU visible.
#
# Environment (all optional):
#   PYTHON                interpreter (default: python3)
#   GPU_CHECK_BUDGET      seconds for the whole run (default 470); the benchmark gets what is left
#   GPU_CHECK_STEPS       steps to run (default build,tests,sanitize,determinism,bench)
#   GPU_CHECK_BENCH_ARGS  extra arguments for benchmarks/bench.py (e.g. "--loss dim")
#   GPU_CHECK_BENCH_FULL_MIN  seconds that must be left for bench.py --full (default 240)
#   GPU_CHECK_TESTS_LIMIT seconds for the CUDA tests (default 300: ~930 of them, 6 ops)
#   GPU_CHECK_PYTEST_ARGS pytest options (default -x; e.g. --maxfail=20 to see more failures)
#   GPU_CHECK_DESELECT    a regex of test ids to leave out (past a test that crashes pytest)
#   GPU_CHECK_CUDA_ARCH   without a GPU: compile the CUDA kernels too, for this arch (e.g. 9.0)
#   GPU_CHECK_COMMIT      the commit to name in the summary where the tree has no .git
#   MAX_JOBS              parallel compile jobs (default: nproc)
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash scripts/gpu_check.sh OUTDIR" >&2
  exit 64
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
mkdir -p "$1" || exit 1
OUT=$(cd "$1" && pwd)
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-470}
WANT=",${GPU_CHECK_STEPS:-build,tests,sanitize,determinism,bench},"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
export PYTHONUNBUFFERED=1
T0=$SECONDS
: > "$WORK/steps.tsv"

elapsed() { echo $((SECONDS - T0)); }
left() { echo $((BUDGET - (SECONDS - T0))); }
banner() { echo; echo "=== [$(elapsed)s] $*"; }
summarize() { "$PY" scripts/gpu_check_summary.py --work "$WORK" --out "$OUT" "$@"; }
# record NAME RC SECONDS NOTE: one step's outcome; the summary is rewritten after each step
record() {
  elapsed > "$WORK/elapsed"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$WORK/steps.tsv"
  summarize || true
}
skip() { record "$1" skip 0 "$2"; echo "skipped $1: $2"; }
want() { [[ $WANT == *",$1,"* ]]; }
# cap SECONDS: the step's limit, bounded by what is left of the budget (at least 10 s)
cap() { local l; l=$(left); if [ "$1" -lt "$l" ]; then echo "$1"; elif [ "$l" -gt 10 ]; then echo "$l"; else echo 10; fi; }
# afford NAME SECONDS: false (and the step recorded as skipped) when less than that is left
afford() {
  if [ "$(left)" -ge "$2" ]; then return 0; fi
  skip "$1" "budget spent ($(elapsed)s of ${BUDGET}s); rerun with GPU_CHECK_STEPS=build,$1"
  return 1
}
run_capped() { local limit=$1; shift; timeout --kill-after=10 "$limit" "$@"; }

# ------------------------------------------------------------------ env
banner "env: versions, GPU, tools"
t=$SECONDS
"$PY" - "$WORK/env.json" "$BUDGET" "${WANT:1:-1}" > "$OUT/env.txt" 2>&1 <<'EOF'
import datetime, json, os, platform, subprocess, sys
env = {"python": platform.python_version(), "budget": int(sys.argv[2]), "steps": sys.argv[3],
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""
env["commit"] = out(["git", "rev-parse", "--short", "HEAD"])
if env["commit"] and out(["git", "status", "--porcelain", "--untracked-files=no"]):
    env["commit"] += "+dirty"
env["commit"] = env["commit"] or os.environ.get("GPU_CHECK_COMMIT") or "? (no git; set GPU_CHECK_COMMIT)"
try:
    import setuptools
    env["setuptools"] = setuptools.__version__
except Exception as error:
    env["setuptools"] = f"missing ({error})"
try:
    import torch
    env.update(torch=torch.__version__, cuda=torch.version.cuda, gpu=torch.cuda.is_available())
    if env["gpu"]:
        p = torch.cuda.get_device_properties(0)
        env.update(gpu_name=p.name, arch="%d.%d" % (p.major, p.minor), sms=p.multi_processor_count,
                   memory_gib=round(p.total_memory / 2**30, 1), gpus=torch.cuda.device_count(),
                   driver=out(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).split("\n")[0])
except Exception as error:
    env.update(torch=f"import failed: {error}", gpu=False)
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env, indent=1))
EOF
rc=$?
{
  echo; echo "--- uname, cpus, memory"; uname -a; nproc; free -g 2>/dev/null
  echo; echo "--- nvcc"; nvcc --version 2>&1 | tail -2
  echo; echo "--- compute-sanitizer"; (compute-sanitizer --version 2>&1 || echo "not on PATH") | tail -2
  echo; echo "--- gcc"; gcc --version 2>&1 | head -1
  echo; echo "--- compilers (CC/CXX from the environment win over PATH's)"
  env | grep -E "^(CC|CXX|LDSHARED|CFLAGS|CXXFLAGS|LDFLAGS)=" || echo "no CC/CXX/LDSHARED/FLAGS set"
  for c in "${CXX:-}" c++ g++; do [ -n "$c" ] && command -v "$c" >/dev/null && echo "$c: $(command -v "$c"): $("$c" --version | head -1)"; done
  echo; echo "--- pip list (selected)"; "$PY" -m pip list 2>/dev/null | grep -iE "^(torch|triton|numpy|pytest|hypothesis|setuptools|ninja|opencv|scikit-image|matplotlib) " || true
  echo; echo "--- nvidia-smi"; nvidia-smi 2>&1 || echo "nvidia-smi not available"
  echo; echo "--- nvidia-smi -q -d CLOCK,PERFORMANCE,POWER,TEMPERATURE"
  nvidia-smi -q -d CLOCK,PERFORMANCE,POWER,TEMPERATURE 2>&1 | grep -v "^\s*$" || true
} >> "$OUT/env.txt" 2>&1
GPU=$("$PY" -c "import json,sys; print(int(bool(json.load(open(sys.argv[1])).get('gpu'))))" "$WORK/env.json" 2>/dev/null || echo 0)
ARCH=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('arch',''))" "$WORK/env.json" 2>/dev/null)
head -20 "$OUT/env.txt"
if [ "$rc" -ne 0 ] || ! "$PY" -c "import torch" 2>/dev/null; then
  record env 1 $((SECONDS - t)) "torch does not import with $PY; see env.txt"
  summarize --final
  exit 1
fi
if [ "$GPU" = 1 ]; then note="GPU $ARCH visible"; else note="no GPU visible: GPU steps will be skipped"; fi
record env 0 $((SECONDS - t)) "$note"
NO_GPU="no GPU visible (torch.cuda.is_available() is False)"

# ------------------------------------------------------------------ build
# An op's argument error (here "bad rho 5", on the CPU) must raise, not kill the process.
error_messages_work() {
  "$PY" - >> "$OUT/build.log" 2>&1 <<'PY'
import torch, mattingloss
x = torch.rand(1, 1, 4, 4)
try:
    torch.ops.mattingloss.alpha_sobel_forward(x, x, None, 3, 0.0, 0.0, 1.0, 5, 0.0, True, True, True, 0,
                                                 1e-8, [1.0, 1.0, 1.0, 0.01], [0, 0, 0], 1, True)
except RuntimeError as error:
    print("probe: an argument error raises:", str(error).splitlines()[0])
PY
}
if want build; then
  banner "build"
  t=$SECONDS
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if [ "$GPU" = 1 ]; then
    export MATTINGLOSS_CUDA=1 TORCH_CUDA_ARCH_LIST=$ARCH
    what="CPU + CUDA kernels for sm_${ARCH/./} (TORCH_CUDA_ARCH_LIST=$ARCH)"
  elif [ -n "${GPU_CHECK_CUDA_ARCH:-}" ]; then
    export MATTINGLOSS_CUDA=1 TORCH_CUDA_ARCH_LIST=$GPU_CHECK_CUDA_ARCH
    what="CPU + CUDA kernels for TORCH_CUDA_ARCH_LIST=$GPU_CHECK_CUDA_ARCH (compile check, no GPU)"
  else
    export MATTINGLOSS_CUDA=0
    what="CPU kernels only (no GPU; GPU_CHECK_CUDA_ARCH=9.0 compiles CUDA too)"
  fi
  # setuptools < 77 rejects pyproject.toml's PEP 639 license = "MIT" even for build_ext, so
  # there the same setup.py builds from a copy of the sources without pyproject.toml.
  if "$PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null; then
    how="setup.py build_ext --inplace"
    run_capped "$(cap 300)" "$PY" setup.py build_ext --inplace --force > "$OUT/build.log" 2>&1
    rc=$?
  else
    how="setuptools < 77: setup.py build_ext in a copy without pyproject.toml"
    stage=$WORK/stage
    mkdir -p "$stage" && cp -r setup.py csrc mattingloss "$stage"/ && rm -f "$stage"/mattingloss/_C*.so
    (cd "$stage" && run_capped "$(cap 300)" "$PY" setup.py build_ext --inplace --force) > "$OUT/build.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then cp "$stage"/mattingloss/_C*.so mattingloss/ || rc=1; fi
  fi
  # A toolchain that links its own copy of libstdc++ into _C.so (seen on the H200 image:
  # CXX=/opt/gcc/bin/g++) builds an extension that segfaults formatting any error message
  # with a number (two copies of the iostream locale). Probe it; rebuild with the system g++.
  if [ $rc -eq 0 ] && ! error_messages_work; then
    echo "build: argument errors crash with ${CXX:-the default compiler}; rebuilding with /usr/bin/g++" | tee -a "$OUT/build.log"
    how="$how, rebuilt with CC=/usr/bin/gcc CXX=/usr/bin/g++ (${CXX:-default} crashed on error messages)"
    CC=/usr/bin/gcc CXX=/usr/bin/g++ LDSHARED="/usr/bin/g++ -shared" run_capped "$(cap 300)" "$PY" setup.py build_ext --inplace --force >> "$OUT/build.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && ! error_messages_work; then
      echo "build: argument errors still crash after the rebuild" | tee -a "$OUT/build.log"; rc=1
    fi
  fi
  secs=$((SECONDS - t))
  if [ $rc -eq 0 ]; then
    built=$("$PY" -c "import mattingloss; print(mattingloss.cuda_kernels_built())" 2>>"$OUT/build.log")
    rc=$?
    echo "import mattingloss: cuda_kernels_built() = $built" >> "$OUT/build.log"
    if [ "$GPU" = 1 ] && [ "$built" != True ]; then rc=1; fi
  fi
  echo "build: rc $rc in ${secs}s, $what, MAX_JOBS=$MAX_JOBS, $how"
  [ $rc -ne 0 ] && tail -30 "$OUT/build.log"
  record build $rc $secs "$what, MAX_JOBS=$MAX_JOBS, $how, ${secs}s"
  if [ $rc -ne 0 ]; then
    echo "build failed: nothing else can run"
    summarize --final
    exit 1
  fi
fi

# ------------------------------------------------------------------ checks, in parallel
# The tests, the four sanitizers and the determinism check only check results, so they share
# the GPU (and the 16 cores) at once; only the benchmark needs the machine to itself.
declare -A pids starts
# launch NAME LIMIT LOG COMMAND...: in the background, capped, output to LOG; its end time
# goes to a file, so that its duration is right whatever order the jobs are collected in
launch() {
  local name=$1 limit=$2 log=$3
  shift 3
  (run_capped "$limit" "$@" > "$log" 2>&1; rc=$?; date +%s > "$WORK/$name.end"; exit $rc) &
  pids[$name]=$!
  starts[$name]=$(date +%s)
}
# collect NAME: waits for it; sets rc and secs
collect() {
  wait "${pids[$1]}"
  rc=$?
  secs=$(( $(cat "$WORK/$1.end" 2>/dev/null || date +%s) - ${starts[$1]} ))
}
SANITIZER=$(command -v compute-sanitizer || true)
for candidate in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  if [ -z "$SANITIZER" ] && [ -x "$candidate" ]; then SANITIZER=$candidate; fi
done
TOOLS="memcheck racecheck initcheck synccheck"
# Several processes on one machine: fewer CPU threads each (torch's default is one per core).
THREADS=$(( $(nproc) / 4 > 1 ? $(nproc) / 4 : 1 ))
banner "checks: tests, compute-sanitizer ($TOOLS), determinism, in parallel"

if want tests && afford tests 30; then
  if [ "$GPU" = 1 ]; then select=cuda; else select=twins; fi
  launch tests "$(cap "${GPU_CHECK_TESTS_LIMIT:-300}")" "$OUT/pytest.log" env GPU_CHECK_SELECT=$select GPU_CHECK_REPORT="$WORK/pytest.json" \
    PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest -q ${GPU_CHECK_PYTEST_ARGS--x} -p gpu_check_pytest --durations=10
fi

if want sanitize; then
  if [ "$GPU" != 1 ]; then
    for tool in $TOOLS; do skip "$tool" "$NO_GPU"; done
  elif [ -z "$SANITIZER" ]; then
    for tool in $TOOLS; do skip "$tool" "compute-sanitizer not found"; done
  elif [ "$(left)" -lt 30 ]; then
    for tool in $TOOLS; do skip "$tool" "budget spent ($(elapsed)s of ${BUDGET}s); rerun with GPU_CHECK_STEPS=build,sanitize"; done
  else
    for tool in $TOOLS; do
      # No caching allocator: every tensor is its own cudaMalloc, so an access past a tensor's
      # end is out of bounds and initcheck sees reads of memory nobody wrote.
      launch "$tool" "$(cap 180)" "$WORK/sanitize_$tool.log" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
        OMP_NUM_THREADS=$THREADS "$SANITIZER" --tool "$tool" --error-exitcode 86 --print-limit 100 \
        "$PY" scripts/cuda_sanitize.py --json "$WORK/sanitize_$tool.json"
    done
  fi
fi

if want determinism && afford determinism 20; then
  if [ "$GPU" = 1 ]; then
    args=(--device cuda --repeat 20 --large)
  else
    args=(--device cpu --repeat 3)  # a dry run of the driver: CPU determinism, 3 calls to keep it short
  fi
  launch determinism "$(cap 180)" "$OUT/determinism.log" env OMP_NUM_THREADS=$THREADS \
    "$PY" scripts/cuda_sanitize.py "${args[@]}" --json "$WORK/determinism.json"
fi

if [ -n "${pids[tests]:-}" ]; then
  collect tests
  grep -v "^\s*$" "$OUT/pytest.log" | tail -14
  record tests $rc $secs ""
fi
if [ -n "${pids[memcheck]:-}" ]; then
  : > "$OUT/sanitize.log"
  for tool in $TOOLS; do
    collect "$tool"
    { echo "##### compute-sanitizer --tool $tool: rc $rc, ${secs}s"; cat "$WORK/sanitize_$tool.log"; echo; } >> "$OUT/sanitize.log"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|^cuda_sanitize:" "$WORK/sanitize_$tool.log" | sed "s/^/$tool: /"
    record "$tool" $rc $secs ""
  done
fi
if [ -n "${pids[determinism]:-}" ]; then
  collect determinism
  grep -v "^ok " "$OUT/determinism.log" | tail -8
  record determinism $rc $secs ""
fi

# ------------------------------------------------------------------ benchmark
if want bench; then
  if [ "$GPU" != 1 ]; then
    skip bench "$NO_GPU; the CPU benchmark is python benchmarks/bench.py (--quick: < 1 min)"
  elif afford bench 60; then
    banner "benchmark"
    t=$SECONDS
    mkdir -p "$WORK/bench"
    # benchmarks/bench.py with --full runs the whole grid (>= 4M pixels, both dtype rows);
    # before it had --full, its default grid was that grid. It writes its files only at the
    # end, so with less than GPU_CHECK_BENCH_FULL_MIN seconds left it runs its default grid
    # (the CPU grid plus a >= 4M-pixel case) rather than risk being cut with nothing written.
    args=(--device cuda --out "$WORK/bench")
    preset="bench.py default grid"
    if [[ " ${GPU_CHECK_BENCH_ARGS:-} " == *" --quick "* ]]; then
      preset="--quick"
    elif "$PY" benchmarks/bench.py --help 2>/dev/null | grep -q -- "--full"; then
      if [ "$(left)" -ge "${GPU_CHECK_BENCH_FULL_MIN:-240}" ]; then
        args+=(--full)
        preset="--full"
      else
        preset="default grid, not --full: $(left)s left < ${GPU_CHECK_BENCH_FULL_MIN:-240}s"
      fi
    fi
    # shellcheck disable=SC2206
    args+=(${GPU_CHECK_BENCH_ARGS:-})
    limit=$(($(left) - 10))
    echo "python benchmarks/bench.py ${args[*]}  (limit ${limit}s)"
    run_capped "$limit" "$PY" benchmarks/bench.py "${args[@]}" > "$WORK/bench/bench.log" 2>&1
    rc=$?
    secs=$((SECONDS - t))
    tar -czf "$OUT/bench.tar.gz" -C "$WORK" bench
    if [ $rc -eq 0 ]; then
      files=$(cd "$WORK/bench" && for f in *; do [ "$f" != bench.log ] && printf '%s ' "$f"; done)
      note="${secs}s, $preset; ${files}in bench.tar.gz"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      note="$preset, cut at ${limit}s (budget) before it wrote its files; rerun with GPU_CHECK_STEPS=build,bench"
    else
      note="rc $rc; see bench.log in bench.tar.gz"
      tail -15 "$WORK/bench/bench.log"
    fi
    record bench $rc $secs "$note"
  fi
fi

banner "summary (also in $OUT/summary.txt)"
summarize --final
code=$?
rm -rf "$WORK"
exit $code
