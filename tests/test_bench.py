"""benchmarks/bench.py and its mlbench package: every loss runs end to end on tiny sizes,
every contender agrees with fused, and the CSV/JSON/txt/PNG files are written."""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
BENCH = BENCH_DIR / "bench.py"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from mlbench import cases, check, memory, runner, timing  # noqa: E402
from mlbench.losses import LOSSES  # noqa: E402

MODES = ("forward", "backward", "full")
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
HAVE_CV2 = importlib.util.find_spec("cv2") is not None


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
        header, rows = reader.fieldnames, list(reader)
    with open(jsons[0]) as fh:
        data = json.load(fh)
    return csvs[0], header, rows, data


def test_quick_run_writes_every_row(tmp_path):
    proc = run_bench(tmp_path, "--quick", "--sizes", "2x64x64", "--min-time", "0.01")  # >= 64: 5 pyramid levels
    csv_path, header, rows, data = read_outputs(tmp_path)
    stem = csv_path.name[: -len(".csv")]
    assert stem.startswith("cpu-") and stem.endswith("threads-quick")
    assert tuple(header) == runner.CSV_COLUMNS
    assert len(rows) == len(data["rows"])
    meta = data["meta"]
    assert meta["torch_version"] == torch.__version__ and meta["preset"] == "quick"
    assert meta["device_type"] == "cpu" and meta["threads"] >= 1

    got = {(r["loss"], r["contender"], r["mode"], r["dtype"]) for r in rows}
    for dtype in ("float32", "bf16+uint8"):
        assert ("dim", "copy", "copy", dtype) in got
        for contender in ("naive", "eager", "fused"):  # --quick leaves compiled out
            for mode in MODES:
                assert ("dim", contender, mode, dtype) in got, (contender, mode, dtype)
    assert not any(c == "compiled" for _, c, _, _ in got)
    assert ("trimap", "make_trimap", "forward", "uint8") in got
    assert ("trimap", "cv2_loop", "forward", "uint8") in got or not HAVE_CV2

    for r in rows:
        assert r["size"] == "2x64x64"
        p20, median, p80 = float(r["p20_ms"]), float(r["median_ms"]), float(r["p80_ms"])
        assert 0 < p20 <= median <= p80
        assert int(r["reps"]) >= 3
        assert float(r["bandwidth_gbs"]) > 0 and float(r["copy_fraction"]) > 0
        if r["mode"] != "copy":
            assert int(r["peak_extra_bytes"]) >= 0
            assert int(r["traffic_bytes"]) > 0
    # the gradient is one float32 per pixel: the fused full mode allocates exactly it
    fused_full = [r for r in rows if r["loss"] == "dim" and r["contender"] == "fused"
                  and r["mode"] == "full" and r["dtype"] == "float32"]
    assert int(fused_full[0]["grad_bytes"]) == 2 * 64 * 64 * 4

    # the summary's ratios are the rows' medians divided
    by_key = {(r["loss"], r["contender"], r["mode"], r["dtype"]): float(r["median_ms"]) for r in rows}
    for entry in data["summary"]["dim"]:
        fused_ms = by_key[("dim", "fused", "full", entry["dtype"])]
        assert entry["fused_ms"] == pytest.approx(fused_ms, rel=1e-5)
        for other in ("naive", "eager"):
            want = by_key[("dim", other, "full", entry["dtype"])] / fused_ms
            assert entry[f"vs_{other}"] == pytest.approx(want, rel=1e-4)
        assert entry["vs_compiled"] is None
    assert {t["target"] for t in data["targets"]}  # evaluated (n/a at this size)

    text = (tmp_path / f"{stem}.txt").read_text()
    assert text.strip() in proc.stdout
    assert "median ms" in text and "vs eager" in text and ("vs cv2_loop" in text or not HAVE_CV2)
    last = text.rstrip().splitlines()[-1].split()  # the report ends with the summary, trimap last
    assert last[:2] == ["2x64x64", "uint8"], last
    if HAVE_MPL:
        assert {p.name for p in tmp_path.glob("*.png")} == {f"{stem}-{name}.png" for name in LOSSES}
    for name in set(LOSSES) - {"dim", "trimap", "metrics", "connectivity"}:  # every loss ran, checked, timed
        assert {(name, "fused", "full", "float32"), (name, "eager", "full", "float32")} <= got, name
    # the metrics have no gradient: forward rows, uint8 mattes as read from disk
    assert {("metrics", "matting_metrics", "forward", "uint8"), ("metrics", "reference_mmagic", "forward", "uint8"),
            ("connectivity", "connectivity_error", "forward", "uint8"),
            ("connectivity", "reference_mmagic", "forward", "uint8")} <= got
    assert "[1/" in proc.stderr and "check eager == fused" in proc.stderr  # progress lines


def test_loss_selection_and_compiled_contender(tmp_path):
    """``--loss dim`` runs dim alone; torch.compile of eager is checked against fused (slow)."""
    run_bench(tmp_path, "--quick", "--loss", "dim", "--sizes", "1x16x16", "--min-time", "0.01",
              "--dtypes", "float32", "--contenders", "compiled", "--modes", "full", timeout=600)
    csv_path, _, rows, data = read_outputs(tmp_path)
    assert csv_path.name.endswith("threads-quick-dim.csv")  # a subset keeps off the whole grid's files
    got = {(r["loss"], r["contender"], r["mode"]) for r in rows}
    assert got == {("dim", "copy", "copy"), ("dim", "compiled", "full"), ("dim", "fused", "full")}
    assert set(data["summary"]) == {"dim"}


def test_check_only_writes_nothing(tmp_path):
    proc = run_bench(tmp_path, "--check-only", "--quick", "--sizes", "2x64x96")
    assert "matches the fused one" in proc.stdout
    assert "check naive == fused on dim 2x64x96 bf16+uint8: ok" in proc.stderr
    for name in set(LOSSES) - {"dim", "trimap", "metrics", "connectivity"}:
        assert f"check eager == fused on {name} 2x64x96 float32: ok" in proc.stderr, name
    assert "check reference_mmagic == matting_metrics on metrics 2x64x96 uint8: ok" in proc.stderr
    assert "check reference_mmagic == connectivity_error on connectivity 2x64x96 uint8: ok" in proc.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_mismatch_is_an_error():
    loss = LOSSES["dim"]
    case = loss.make_case("1x16x16", "float32", "cpu")
    expected = check.outputs(loss.contenders["fused"](case), case)
    eager = loss.contenders["eager"](case)
    loss.check(case, "eager", check.outputs(eager, case), expected)
    with pytest.raises(check.MismatchError, match="does not match fused"):
        loss.check(case, "eager", check.outputs(lambda: 1.01 * eager(), case), expected)

    def one_wrong_gradient_element():  # same loss value, gradient off at one pixel
        p = case["pred"][0, 0, 3, 4]
        return eager() + 1e-3 * (p - p.detach())

    with pytest.raises(check.MismatchError, match="gradient: 1 of"):
        loss.check(case, "eager", check.outputs(one_wrong_gradient_element, case), expected)


def test_a_mismatching_contender_is_reported_and_left_out_of_the_timing(capsys):
    import dataclasses

    from mlbench.environment import Progress

    dim = LOSSES["dim"]
    wrong = dataclasses.replace(dim, contenders={
        **dim.contenders, "eager": lambda case: (lambda f=dim.contenders["eager"](case): 1.01 * f())})
    case = dim.make_case("1x16x16", "float32", "cpu")
    mismatches = []
    fns = runner.check_case(wrong, case, ["naive", "eager", "fused"], Progress(1), mismatches)
    assert sorted(fns) == ["fused", "naive"]
    assert len(mismatches) == 1 and mismatches[0].startswith("eager does not match fused on dim 1x16x16 float32")
    assert "MISMATCH: eager does not match fused" in capsys.readouterr().err


def test_checks_run_in_ieee_float32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with check.ieee_float32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"dim", "trimap"}))
@pytest.mark.parametrize("dtype", ["float32", "bf16"])
def test_every_loss_checks_its_eager_contender(name, dtype):
    """Each loss's eager contender passes its check on a quick-size case of every dtype row
    the loss has (float32, and its bfloat16 row), and the check rejects a loss off by 1 % (5 % in bfloat16)
    and a gradient off on part of the image."""
    loss = LOSSES[name]
    row = dtype if dtype in loss.dtypes else next((d for d in loss.dtypes if d.startswith(dtype)), None)
    if row is None:
        pytest.skip(f"{name} has no {dtype} row")
    size = loss.cases_for("quick", "cpu")[0][0]
    case = loss.make_case(size, row, "cpu")
    expected = check.outputs(loss.contenders["fused"](case), case)
    eager = loss.contenders["eager"](case)
    loss.check(case, "eager", check.outputs(eager, case), expected)
    off = 1.01 if dtype == "float32" else 1.05  # bfloat16 rows: loss rtol up to 3e-2
    with pytest.raises(check.MismatchError, match="does not match fused"):
        loss.check(case, "eager", check.outputs(lambda: off * eager(), case), expected)
    # the same value, the gradient off on part of the image: float32, 10 % on the top-left
    # quarter; bfloat16 (whose eager rounds: bounds up to 0.5 relative L2), doubled on the top half
    factor, (h, w) = (0.1, (2, 2)) if dtype == "float32" else (1.0, (2, 1))

    def gradient_off():
        p = case.pred
        part = p[..., : p.shape[-2] // h, : p.shape[-1] // w]
        g = expected[1][..., : p.shape[-2] // h, : p.shape[-1] // w].to(p.dtype)
        return eager() + factor * (g * (part - part.detach())).sum()

    with pytest.raises(check.MismatchError, match="does not match fused"):
        loss.check(case, "eager", check.outputs(gradient_off, case), expected)


def test_trimap_mismatch_is_an_error():
    loss = LOSSES["trimap"]
    case = loss.make_case("2x40x40", "uint8", "cpu")
    fn = loss.contenders["make_trimap"](case)
    expected = check.outputs(fn, case)
    assert expected[1] is None and set(expected[0].unique().tolist()) <= {0, 128, 255}

    def off_by_one_pixel():
        out = fn().clone()
        out[1, 0, 5, 7] = 128 if out[1, 0, 5, 7] != 128 else 0
        return out

    with pytest.raises(check.MismatchError, match="differs at 1 of 3200"):
        loss.check(case, "cv2_loop", check.outputs(off_by_one_pixel, case), expected)


def test_bad_arguments_exit_nonzero(tmp_path):
    for args, message in ((["--sizes", "16x320"], "BxHxW"), (["--loss", "nope"], "nope not in"),
                          (["--quick", "--full"], "not allowed with")):
        proc = subprocess.run([sys.executable, str(BENCH), *args, "--out", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)


def test_every_loss_declares_its_grids():
    for name, loss in LOSSES.items():
        assert loss.name == name and loss.fused in loss.contenders
        for preset in ("quick", "default", "full"):
            for device_type in ("cpu", "cuda"):
                grid = loss.cases_for(preset, device_type)
                assert grid and all(d in cases.DTYPE_ROWS for _, d in grid)
                for size, _ in grid:
                    cases.parse_size(size)
    # the GPU targets need a case of >= 4M pixels; --full has both dtype rows there
    full = LOSSES["dim"].cases_for("full", "cuda")
    big = {d for s, d in full if torch.Size(cases.parse_size(s)).numel() >= 4 * 2**20}
    assert big == {"float32", "bf16+uint8"}


def test_traffic_is_inputs_plus_gradient():
    case = LOSSES["dim"].make_case("2x8x8", "bf16+uint8", "cpu")
    px = 2 * 8 * 8
    # pred bf16 (2) + alpha, trimap (1 each) + image, fg, bg (3 each), gradient bf16 (2)
    assert LOSSES["dim"].bytes_moved(case, "full") == px * (2 + 1 + 1 + 9 + 2)
    assert LOSSES["dim"].bytes_moved(case, "backward") == px * 4


def test_percentiles_and_rounds():
    t = timing.Timing([5.0, 1.0, 4.0, 2.0, 3.0])
    assert t.median == 3.0 and t.percentile(0.2) == pytest.approx(1.8) and t.percentile(0.8) == pytest.approx(4.2)
    per_round = timing.TimingPolicy(1.0, 5, 200, 2, rounds=5).per_round()
    assert (per_round.min_time, per_round.min_reps, per_round.max_reps, per_round.rounds) == (0.2, 1, 40, 1)
    order = []
    statements = {k: (lambda: None, lambda _, k=k: order.append(k)) for k in "abc"}
    policy = timing.TimingPolicy(0.0, 2, 2, 0, rounds=2)
    result = timing.interleaved(statements, torch.device("cpu"), policy)
    assert order == list("abcabc") and all(len(t.times_s) == 2 for t in result.values())


def test_slow_rows_warm_up_in_the_first_round_only():
    calls = {"slow": 0, "fast": 0}

    def run(key):
        calls[key] += 1
        if key == "slow":
            time.sleep(0.002)  # longer than a round's time budget (1 ms)

    statements = {k: (lambda: None, lambda _, k=k: run(k)) for k in calls}
    policy = timing.TimingPolicy(min_time=0.003, min_reps=3, max_reps=3, warmup=1, rounds=3)
    result = timing.interleaved(statements, torch.device("cpu"), policy)
    assert all(len(t.times_s) == 3 for t in result.values())
    # fast: a warm-up and a repetition per round; slow: the warm-up in round 1 only
    assert calls == {"slow": 4, "fast": 6}


def test_cpu_peak_memory_counts_the_allocator():
    n = 1 << 20
    peak = memory.peak_bytes(lambda _: torch.empty(n, dtype=torch.float32).fill_(1.0), lambda: None,
                             torch.device("cpu"))
    assert 4 * n <= peak < 4 * n + 64 * 1024
    two = memory.peak_bytes(lambda _: (torch.ones(n) + 1).sum(), lambda: None, torch.device("cpu"))
    assert 8 * n <= two < 8 * n + 64 * 1024  # ones and ones + 1 alive together


def test_standard_check_tolerances():
    case = cases.make_case("x", "1x4x4", "float32", "cpu", ("pred", "alpha"))
    loss, grad = torch.tensor(0.5), torch.full((1, 1, 4, 4), 1e-2)
    assert "grad rtol 0.0001" in check.standard(case, "eager", (loss * (1 + 5e-5), grad * (1 + 5e-5)), (loss, grad))
    with pytest.raises(check.MismatchError, match="eager does not match fused on x 1x4x4 float32"):
        check.standard(case, "eager", (loss * (1 + 1e-3), grad), (loss, grad))
    bad = grad.clone()
    bad[0, 0, 1, 2] *= 1.001
    with pytest.raises(check.MismatchError, match=r"gradient: 1 of 16 elements .* first at \(0, 0, 1, 2\)"):
        check.standard(case, "eager", (loss, bad), (loss, grad))
    with pytest.raises(check.MismatchError, match="gradient dtype"):
        check.standard(case, "eager", (loss, grad.bfloat16()), (loss, grad))
