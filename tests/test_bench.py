"""The benchmark script runs end to end on tiny sizes and writes its CSV/JSON rows."""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
LOSS_CONTENDERS = ("naive", "eager", "fused")  # --quick's default set
MODES = ("forward", "backward", "full")
DTYPES = ("float32", "bf16+uint8")


def load_bench():
    name = "mattingloss_bench"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_bench(out: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cpu", "--out", str(out), *args],
        capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"bench.py failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def read_outputs(out: Path):
    csvs, jsons = list(out.glob("*.csv")), list(out.glob("*.json"))
    assert len(csvs) == 1 and len(jsons) == 1, sorted(p.name for p in out.iterdir())
    with open(csvs[0], newline="") as fh:
        reader = csv.DictReader(fh)
        header, csv_rows = reader.fieldnames, list(reader)
    with open(jsons[0]) as fh:
        data = json.load(fh)
    return csvs[0], header, csv_rows, data


def test_quick_run_writes_every_row(tmp_path):
    bench = load_bench()
    proc = run_bench(tmp_path, "--quick", "--sizes", "2x32x32", "--min-time", "0.01")
    csv_path, header, rows, data = read_outputs(tmp_path)

    assert csv_path.name.startswith("cpu-") and csv_path.name.endswith("threads-quick.csv")
    assert tuple(header) == bench.CSV_COLUMNS
    assert len(rows) == len(data["rows"])
    assert data["meta"]["torch_version"] == torch.__version__
    assert data["meta"]["device_type"] == "cpu" and data["meta"]["threads"] >= 1

    got = {(r["contender"], r["mode"], r["dtype"]) for r in rows}
    for dtype in DTYPES:
        assert ("copy", "copy", dtype) in got
        for contender in LOSS_CONTENDERS:
            for mode in MODES:
                assert (contender, mode, dtype) in got, (contender, mode, dtype)
    assert ("make_trimap", "trimap", "uint8") in got
    try:
        import cv2  # noqa: F401
        assert ("cv2_loop", "trimap", "uint8") in got
    except ImportError:
        pass

    for r in rows:
        if r["mode"] in MODES:
            assert r["size"] == "2x32x32"
            p20, median, p80 = float(r["p20_ms"]), float(r["median_ms"]), float(r["p80_ms"])
            assert 0 < p20 <= median <= p80
            assert int(r["reps"]) >= 3
            assert int(r["peak_extra_bytes"]) >= 0
            assert float(r["bandwidth_gbs"]) > 0 and float(r["copy_fraction"]) > 0
    assert {t["target"] for t in data["targets"]}  # evaluated (n/a at this size)
    assert "targets" in proc.stdout and "median ms" in proc.stdout
    assert "[1/" in proc.stderr  # progress lines


def test_compiled_contender(tmp_path):
    """torch.compile of the reference, checked against fused (slow: one compile)."""
    run_bench(tmp_path, "--quick", "--sizes", "1x16x16", "--min-time", "0.01", "--dtypes",
              "float32", "--contenders", "compiled", "--modes", "full", "--no-trimap", timeout=600)
    _, _, rows, _ = read_outputs(tmp_path)
    got = {(r["contender"], r["mode"]) for r in rows}
    assert got == {("copy", "copy"), ("compiled", "full"), ("fused", "full")}


def test_mismatch_is_an_error():
    bench = load_bench()
    case = bench.make_case(1, 16, 16, "float32", "cpu")
    expected = bench.loss_and_grad(bench.make_loss_fn("fused", case), case.pred)
    eager = bench.make_loss_fn("eager", case)
    bench.check_against_fused(case, "eager", eager, expected)
    with pytest.raises(bench.MismatchError, match="does not match fused"):
        bench.check_against_fused(case, "eager", lambda: 1.01 * eager(), expected)

    def one_wrong_gradient_element():  # same loss value, gradient off at one pixel
        p = case.pred[0, 0, 3, 4]
        return eager() + 1e-3 * (p - p.detach())

    with pytest.raises(bench.MismatchError, match="gradient: 1 of"):
        bench.check_against_fused(case, "eager", one_wrong_gradient_element, expected)


def test_bad_arguments_exit_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--sizes", "16x320", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "BxHxW" in proc.stderr
