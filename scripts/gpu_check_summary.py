#!/usr/bin/env python
"""The summary of scripts/gpu_check.sh: reads what its steps left in the work folder
(steps.tsv, env.json, pytest.json, the sanitizer logs, the driver's JSON reports,
the benchmark's JSON) and writes OUTDIR/summary.txt and OUTDIR/summary.json.

Called after every step (so that a run cut short still leaves a summary) and once
at the end with --final, which prints the table and exits with the run's verdict:
0 every step passed on a GPU, 1 a step failed, 2 no GPU was visible (CPU dry run).
Standard library only: it must work even where torch does not import.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SANITIZERS = ("memcheck", "racecheck", "initcheck", "synccheck")
ORDER = ("env", "build", "tests", *SANITIZERS, "determinism", "bench")


DEFAULT_STEPS = ("build", "tests", "sanitize", "determinism", "bench")


def expand_steps(text: str) -> list[str]:
    """GPU_CHECK_STEPS as summary rows: env always, 'sanitize' is one row per tool."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    rows = ["env"]
    for n in names:
        rows += list(SANITIZERS) if n == "sanitize" else [n]
    return [n for n in ORDER if n in rows]


def load_json(path: Path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def read_steps(work: Path) -> dict:
    """steps.tsv: name, rc (an integer, or 'skip'), seconds, note."""
    steps = {}
    try:
        lines = (work / "steps.tsv").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) >= 3:
            name, rc, seconds = parts[:3]
            steps[name] = {"rc": rc, "seconds": int(float(seconds)), "note": parts[3] if len(parts) > 3 else ""}
    return steps


def driver_line(report) -> str:
    if not report:
        return "driver report missing"
    text = f"{report['ran']} cases"
    if report.get("skipped"):
        skipped = [c["name"] for c in report["cases"] if c["status"] == "skipped"]
        text += f" ({report['skipped']} skipped, not built: {', '.join(skipped)})"
    bad = [f"{report[k]} {k}" for k in ("mismatched", "nondeterministic", "errors") if report.get(k)]
    return text + (", " + ", ".join(bad) if bad else "")


def driver_failures(report) -> list[str]:
    if not report:
        return []
    return [f"{c['name']}: {c['detail']}" for c in report["cases"] if c["status"] not in ("ok", "skipped")]


def judge(name: str, step: dict, work: Path, gpu: bool) -> tuple[str, str, list[str]]:
    """(status, detail, extra lines) of one step."""
    rc, note = step["rc"], step["note"]
    if rc == "skip":
        return "skipped", note, []
    rc = int(rc)
    timed_out = rc in (124, 137)
    if name == "env":
        return ("ok" if rc == 0 else "FAIL"), note, []
    if name == "build":
        return ("ok" if rc == 0 else "FAIL"), note, []
    if name == "tests":
        rep = load_json(work / "pytest.json")
        if rep is None:
            return ("TIMEOUT" if timed_out else "FAIL"), f"pytest rc {rc}, no report; see pytest.log", []
        c, o = rep["counts"]["cuda"], rep["counts"]["other"]
        ran = c["passed"] + c["failed"]
        if gpu:
            detail = (f"{ran} CUDA tests ran: {c['passed']} passed, {c['failed']} failed, "
                      f"{c['skipped']} skipped")
            ok = rc == 0 and c["failed"] == 0 and c["skipped"] == 0 and c["passed"] > 0
        else:
            detail = (f"CPU twins of the CUDA tests: {o['passed'] + c['passed']} passed, "
                      f"{o['failed'] + c['failed']} failed; {c['skipped']} CUDA tests skipped (no GPU)")
            ok = rc == 0 and o["failed"] + c["failed"] == 0
        extra = [f"  failed: {t}" for t in rep["failed"][:10]]
        if gpu:
            extra += [f"  skipped: {t}" for t in rep["skipped_cuda"][:10]]
        status = "ok" if ok else ("TIMEOUT" if timed_out else "FAIL")
        return status, detail + (" (pytest stopped early, -x or --maxfail: later tests did not run)" if rep["failed"] else ""), extra
    if name in SANITIZERS:
        log = work / f"sanitize_{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        # racecheck ends "RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)" (seen on an H200)
        found = (re.findall(r"ERROR SUMMARY: (\d+) error", text)
                 or re.findall(r"RACECHECK SUMMARY: \d+ hazards? displayed \((\d+) errors?", text))
        errors = int(found[-1]) if found else None
        report = load_json(work / f"sanitize_{name}.json")
        # Where the errors are: memcheck/initcheck "=========     at void ns::kernel<...>(args)+0x1b0 in
        # file.cu:12", racecheck "Race reported between Write access at void ...+0x80 ... and Read access at"
        kernels = sorted(set(k[:120] for k in re.findall(r"(?:^=+\s+at | access at )(.+?)\+0x[0-9a-f]+", text, re.M)))
        detail = ("errors: ? (no ERROR/RACECHECK SUMMARY line)" if errors is None else f"errors: {errors}") + "; " + driver_line(report)
        extra = [f"  in: {k}" for k in kernels[:5]] + [f"  {f}" for f in driver_failures(report)[:5]]
        if timed_out:
            return "TIMEOUT", detail, extra
        clean_run = report is not None and not driver_failures(report)
        if errors == 0 and rc == 0 and clean_run:
            return "ok", detail, extra
        # Every report in a kernel outside mattingloss (torch's own): for a person to judge.
        if errors and clean_run and rc in (0, 86) and kernels and not any("mattingloss" in k for k in kernels):
            return "WARN", detail + " (all in kernels outside mattingloss)", extra
        return "FAIL", detail, extra
    if name == "determinism":
        report = load_json(work / "determinism.json")
        if report is None:
            return ("TIMEOUT" if timed_out else "FAIL"), f"rc {rc}, no report; see determinism.log", []
        where = "CUDA" if report["device"] == "cuda" else "CPU (dry run)"
        large = [c for c in report["cases"] if "2_31" in c["name"] and c["status"] != "skipped"]
        detail = (f"{where}: {report['ran']} cases x {report['repeat']} calls, "
                  f"{report['ran'] - report['nondeterministic']} bitwise equal")
        if report["device"] == "cuda":
            detail += f", {report['ran'] - report['mismatched'] - report['errors']} match the CPU"
        if large:
            detail += f"; >2^31 elements: {large[0]['status']}"
        ok = rc == 0 and not driver_failures(report)
        return ("ok" if ok else ("TIMEOUT" if timed_out else "FAIL")), detail, [f"  {f}" for f in driver_failures(report)[:5]]
    if name == "bench":
        status = "ok" if rc == 0 else ("TIMEOUT" if timed_out else "FAIL")
        return status, note or f"rc {rc}; see bench.tar.gz (bench.log)", []
    return ("ok" if rc == 0 else "FAIL"), note, []


def bench_lines(work: Path) -> tuple[list[str], list[dict]]:
    """The fused-vs-others table from the benchmark's JSON (old single-file or new package format)."""
    lines, entries = [], []
    for path in sorted((work / "bench").glob("*.json")):
        data = load_json(path)
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("summary"), dict):  # benchmarks/mlbench: {loss: [entries]}
            for loss, items in data["summary"].items():
                for e in items:
                    vs = {k[3:]: v for k, v in e.items() if k.startswith("vs_")}
                    entries.append({"loss": loss, "size": e.get("size"), "dtype": e.get("dtype"),
                                    "fused_ms": e.get("fused_ms"), "vs": vs, "copy_fraction": e.get("copy_fraction")})
        elif isinstance(data.get("fused_ratios"), list):  # the single-file bench.py
            for e in data["fused_ratios"]:
                vs = {k[len("speedup_vs_"):]: v for k, v in e.items() if k.startswith("speedup_vs_")}
                entries.append({"loss": "dim", "size": e.get("size"), "dtype": e.get("dtype"), "fused_ms": None,
                                "vs": vs, "copy_fraction": e.get("copy_fraction")})
        for t in data.get("targets") or []:
            value = "-" if t.get("value") is None else f"{t['value']:.3g}"
            lines.append(f"  [{t.get('status', '?'):>4}] {t.get('target')} (measured {value}, threshold {t.get('threshold')})")
    if not entries:
        return lines, entries
    others = list(dict.fromkeys(k for e in entries for k, v in e["vs"].items() if v is not None))

    def cell(v, spec):
        return "-" if v in (None, "") else format(v, spec)

    rows = [("loss", "size", "dtype", "fused ms", *(f"vs {o}" for o in others), "% copy bw")]
    for e in entries:
        rows.append((str(e["loss"]), str(e["size"]), str(e["dtype"]), cell(e["fused_ms"], ".4g"),
                     *("-" if e["vs"].get(o) is None else f"{e['vs'][o]:.2f}x" for o in others),
                     "-" if e["copy_fraction"] in (None, "") else f"{100 * e['copy_fraction']:.0f}%"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  " + "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    head = "benchmark, fused against each contender (vs X = X's median time / fused's; above 1x fused is faster):"
    return [head] + table + lines, entries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--final", action="store_true", help="print the summary and exit with the verdict")
    args = parser.parse_args(argv)

    env = load_json(args.work / "env.json") or {}
    gpu = bool(env.get("gpu"))
    steps = read_steps(args.work)
    rows, extras, verdicts = [], [], {}
    for name in ORDER:
        if name not in steps:
            continue
        status, detail, extra = judge(name, steps[name], args.work, gpu)
        verdicts[name] = status
        rows.append((name, status, f"{steps[name]['seconds']}s", detail))
        extras += [f"{name}:{line}" for line in extra]
    try:  # wall time: the checks run in parallel, so the steps' times overlap
        total = int((args.work / "elapsed").read_text())
    except (OSError, ValueError):
        total = sum(s["seconds"] for s in steps.values())
    title = (f"gpu_check: {env.get('gpu_name') or 'no GPU visible'}"
             + (f" (sm_{env.get('arch', '?').replace('.', '')}, {env.get('sms')} SMs)" if gpu else "")
             + f", torch {env.get('torch', '?')}, CUDA {env.get('cuda', '-')}, driver {env.get('driver', '-')}, "
             f"python {env.get('python', '?')}, setuptools {env.get('setuptools', '?')}, "
             f"commit {env.get('commit', '?')}, {env.get('date', '')}")
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("step", "status", "time"))]
    table = [f"{'step':<{widths[0]}}  {'status':<{widths[1]}}  {'time':>{widths[2]}}  detail"]
    table += [f"{n:<{widths[0]}}  {s:<{widths[1]}}  {t:>{widths[2]}}  {d}" for n, s, t, d in rows]
    table.append(f"{'total':<{widths[0]}}  {'':<{widths[1]}}  {str(total) + 's':>{widths[2]}}  "
                 f"(budget {env.get('budget', '?')} s)")
    bench, bench_entries = bench_lines(args.work)

    wanted = expand_steps(env.get("steps", ",".join(DEFAULT_STEPS)))
    failed = [n for n, s in verdicts.items() if s not in ("ok", "skipped", "WARN")]
    warned = [n for n, s in verdicts.items() if s == "WARN"]
    missing = [n for n in wanted if verdicts.get(n) not in ("ok", "WARN")]
    warning = (f" (WARN: {', '.join(warned)} reported errors only in torch's own kernels: judge them in "
               "sanitize.log)") if warned else ""
    if failed:
        verdict, code = f"FAIL: {', '.join(failed)}{warning}", 1
    elif not gpu:
        verdict, code = ("NO GPU: torch.cuda.is_available() is False here, so every GPU step was skipped; "
                         "the CPU steps passed. Run it on a GPU machine (docs/gpu-check.md)."), 2
    elif missing:
        verdict, code = f"INCOMPLETE: {', '.join(missing)} did not run", 1
    elif wanted == expand_steps(",".join(DEFAULT_STEPS)):
        verdict, code = f"PASS: every step passed on the GPU{warning}", 0
    else:
        verdict, code = f"PASS: {', '.join(wanted)} passed on the GPU (GPU_CHECK_STEPS chose these){warning}", 0

    text = "\n".join([title, "", *table, *([""] + extras if extras else []), *([""] + bench if bench else []),
                      "", verdict]) + "\n"
    (args.out / "summary.txt").write_text(text)
    with open(args.out / "summary.json", "w") as fh:
        json.dump({"env": env, "steps": {n: {**steps[n], "status": verdicts.get(n)} for n in steps},
                   "tests": load_json(args.work / "pytest.json"),
                   "sanitizers": {t: load_json(args.work / f"sanitize_{t}.json") for t in SANITIZERS},
                   "determinism": load_json(args.work / "determinism.json"),
                   "bench": bench_entries, "verdict": verdict, "exit_code": code}, fh, indent=1)
    if args.final:
        print(text, end="")
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
