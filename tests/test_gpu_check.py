"""The GPU check's own logic, on the CPU: the driver's CPU-vs-CUDA comparison and bitwise
check catch what they must, and the summary reads sanitizer logs, test reports and the
benchmark's JSON into the right verdict (scripts/gpu_check.sh, docs/gpu-check.md)."""
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import cuda_sanitize  # noqa: E402
import gpu_check_summary  # noqa: E402


def test_compare_accepts_rounding_and_flags_real_differences():
    g = torch.Generator().manual_seed(0)
    ref = {"loss": torch.tensor(0.3125), "grad": torch.rand(2, 1, 8, 8, generator=g) * 1e-3,
           "trimap": torch.randint(0, 3, (4, 4), generator=g, dtype=torch.uint8)}
    same = {k: v.clone() for k, v in ref.items()}
    same["grad"] = same["grad"] * (1 + 1e-7)  # float32 rounding: accepted
    assert cuda_sanitize.compare(same, ref, {}) == []

    off = {k: v.clone() for k, v in ref.items()}
    off["grad"][1, 0, 3, 5] += 1e-3 * 1e-3  # one element off by 1e-3 of the range
    off["trimap"][0, 0] ^= 1
    problems = cuda_sanitize.compare(off, ref, {})
    assert len(problems) == 2
    assert problems[0].startswith("grad:") and problems[1].startswith("trimap: 1 of 16")

    nan = {k: v.clone() for k, v in ref.items()}
    nan["loss"] = torch.tensor(float("nan"))
    assert cuda_sanitize.compare(nan, ref, {}) == ["loss: NaN in different places"]


def test_compare_half_precision_tolerance_is_two_ulp():
    ref = {"g": torch.tensor([1.0, 0.5, 2**-20], dtype=torch.float16)}  # the last is subnormal
    one_ulp = {"g": torch.tensor([1.0 + 2**-10, 0.5, 2**-20 + 2**-24], dtype=torch.float16)}
    assert cuda_sanitize.compare(one_ulp, ref, {}) == []
    three_ulp = {"g": torch.tensor([1.0 + 3 * 2**-10, 0.5, 2**-20], dtype=torch.float16)}
    assert len(cuda_sanitize.compare(three_ulp, ref, {})) == 1


def test_bitwise_equal_sees_signed_zero_and_equal_nans():
    a = {"x": torch.tensor([0.0, float("nan"), 1.0])}
    assert cuda_sanitize.bitwise_equal(a, {"x": a["x"].clone()}) == []
    assert cuda_sanitize.bitwise_equal(a, {"x": torch.tensor([-0.0, float("nan"), 1.0])}) == ["x"]
    assert cuda_sanitize.bitwise_equal({"s": torch.tensor(1.5)}, {"s": torch.tensor(1.5)}) == []


def test_a_case_whose_op_is_not_built_is_skipped_with_its_name():
    assert cuda_sanitize.missing(("mattingloss::dim_loss_forward",), "cpu") is None
    assert "mattingloss::no_such_op" in cuda_sanitize.missing(("mattingloss::no_such_op",), "cpu")
    assert "mattingloss.no_such_function" in cuda_sanitize.missing(("mattingloss.no_such_function",), "cpu")


def test_driver_dry_run_on_cpu_is_deterministic(tmp_path):
    report = tmp_path / "r.json"
    assert cuda_sanitize.main(["--device", "cpu", "--repeat", "2", "-k", "unaligned", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    # the unaligned-view cases of every op: DIM (5), composition (2), Laplacian, alpha (4), temporal
    assert data["ran"] == 13 and data["nondeterministic"] == 0 and data["skipped"] == 0


def test_driver_runs_every_op():
    """Every op of the extension has driver cases (a new op without one fails here), and every
    case of a built op runs on the CPU (needs names ops that exist)."""
    ops = {name for name in torch._C._dispatch_get_all_op_names() if name.startswith("mattingloss::")}
    ops.discard("mattingloss::abi_version")  # reads no tensor: nothing to run on a GPU
    assert len(ops) >= 5
    needed = {need for c in cuda_sanitize.CASES for need in c.needs}
    assert ops <= needed, f"ops without a case in scripts/cuda_sanitize.py: {sorted(ops - needed)}"
    assert all(cuda_sanitize.missing(c.needs, "cpu") is None for c in cuda_sanitize.CASES)
    names = [c.name for c in cuda_sanitize.CASES]
    assert len(names) == len(set(names))  # -k and the reports identify a case by its name


def test_driver_inputs_keep_residuals_away_from_zero():
    # The comparison's tight tolerances rely on it (see away_from_integers).
    for dtype in cuda_sanitize.PRED_DTYPES.values():
        x = cuda_sanitize.dim_inputs(3, 16, 16, dtype, "same")
        p = x["pred_alpha"].double()
        assert (p * 255 - x["alpha"].double()).abs().min() >= 0.3 - 1e-9
        comp = p * x["fg"].double() + (1 - p) * x["bg"].double()
        assert (comp - x["image"].double()).abs().min() >= 0.3 - 1e-6


SANITIZER_CLEAN = "========= COMPUTE-SANITIZER\nok  x\ncuda_sanitize: 48 cases ran\n========= ERROR SUMMARY: 0 errors\n"
SANITIZER_RACE = (
    "========= COMPUTE-SANITIZER\n"
    "========= Error: Race reported between Write access at void mattingloss::(anonymous namespace)::"
    "dim_loss_forward_kernel<true, float>(...)+0x1a0\n"
    "=========     and Read access at void mattingloss::(anonymous namespace)::finish<float>(...)+0x2f0\n"
    "========= Invalid __global__ read of size 16 bytes\n"
    "=========     at void mattingloss::(anonymous namespace)::dim_loss_forward_kernel<false, double>(...)+0x90\n"
    "========= ERROR SUMMARY: 2 errors\n"
)


def fake_run(work, *, race=False, skipped_cuda=0):
    work.mkdir(exist_ok=True)
    (work / "env.json").write_text(json.dumps({"gpu": True, "gpu_name": "NVIDIA H100 80GB HBM3", "arch": "9.0",
                                               "sms": 132, "torch": "2.11.0+cu130", "budget": 470}))
    steps = ["env\t0\t3\tGPU 9.0 visible", "build\t0\t80\tCPU + CUDA kernels", "tests\t0\t100\t"]
    driver = {"device": "cuda", "repeat": 1, "ran": 48, "skipped": 0, "mismatched": 0, "nondeterministic": 0,
              "errors": 0, "cases": [{"name": "dim_x", "status": "ok", "detail": ""}]}
    for tool in gpu_check_summary.SANITIZERS:
        bad = race and tool == "racecheck"
        (work / f"sanitize_{tool}.log").write_text(SANITIZER_RACE if bad else SANITIZER_CLEAN)
        (work / f"sanitize_{tool}.json").write_text(json.dumps(driver))
        steps.append(f"{tool}\t{86 if bad else 0}\t40\t")
    (work / "determinism.json").write_text(json.dumps({**driver, "repeat": 20}))
    steps += ["determinism\t0\t12\t", "bench\t0\t200\tok"]
    counts = {"cuda": {"passed": 170, "failed": 0, "skipped": skipped_cuda},
              "other": {"passed": 0, "failed": 0, "skipped": 0}}
    (work / "pytest.json").write_text(json.dumps({"counts": counts, "failed": [],
                                                  "skipped_cuda": ["t: needs a CUDA GPU"] * skipped_cuda}))
    (work / "steps.tsv").write_text("\n".join(steps) + "\n")
    bench = work / "bench"
    bench.mkdir(exist_ok=True)
    # the single-file bench.py's JSON (fused_ratios), and benchmarks/mlbench's (summary per loss)
    (bench / "old.json").write_text(json.dumps({"fused_ratios": [
        {"size": "1x2048x2048", "dtype": "float32", "copy_fraction": 0.9, "speedup_vs_naive": 40.0,
         "speedup_vs_eager": 8.0, "speedup_vs_compiled": 3.5}],
        "targets": [{"target": "GPU float32 >= 4M pixels", "value": 0.9, "threshold": 0.85, "status": "PASS"}]}))
    (bench / "new.json").write_text(json.dumps({"summary": {"trimap": [
        {"size": "16x320x320", "dtype": "uint8", "fused_ms": 0.5, "copy_fraction": 0.2, "vs_cv2_loop": 12.5}]}}))


def summarize(work, out):
    out.mkdir(exist_ok=True)
    code = gpu_check_summary.main(["--work", str(work), "--out", str(out), "--final"])
    return code, (out / "summary.txt").read_text(), json.loads((out / "summary.json").read_text())


def test_summary_passes_a_clean_gpu_run(tmp_path, capsys):
    fake_run(tmp_path / "w")
    code, text, data = summarize(tmp_path / "w", tmp_path / "o")
    assert code == 0 and text.rstrip().endswith("PASS: every step passed on the GPU")
    assert "170 CUDA tests ran: 170 passed, 0 failed, 0 skipped" in text
    assert "40.00x" in text and "90%" in text and "12.50x" in text and "[PASS] GPU float32" in text
    assert data["exit_code"] == 0 and data["steps"]["racecheck"]["status"] == "ok"
    assert capsys.readouterr().out == text  # --final prints the table last


def test_summary_reads_racechecks_own_summary_line(tmp_path):
    """racecheck ends with its own line, not memcheck's ERROR SUMMARY (seen on an H200)."""
    fake_run(tmp_path / "w")
    log = tmp_path / "w" / "sanitize_racecheck.log"
    log.write_text("========= COMPUTE-SANITIZER\n"
                   "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)\n")
    code, text, data = summarize(tmp_path / "w", tmp_path / "o")
    assert code == 0 and data["steps"]["racecheck"]["status"] == "ok"
    assert re.search(r"^racecheck\s+ok\s+40s\s+errors: 0; 48 cases$", text, re.M)
    log.write_text("========= RACECHECK SUMMARY: 3 hazards displayed (2 errors, 1 warnings)\n")
    code, text, data = summarize(tmp_path / "w", tmp_path / "o2")
    assert code == 1 and data["steps"]["racecheck"]["status"] == "FAIL" and "errors: 2" in text


def test_summary_fails_on_sanitizer_errors_and_names_the_kernels(tmp_path):
    fake_run(tmp_path / "w", race=True)
    code, text, _ = summarize(tmp_path / "w", tmp_path / "o")
    assert code == 1 and "FAIL: racecheck" in text
    assert re.search(r"^racecheck\s+FAIL\s+40s\s+errors: 2; 48 cases$", text, re.M)
    assert "dim_loss_forward_kernel<false, double>(...)" in text  # memcheck's "at"
    assert "finish<float>(...)" in text  # racecheck's "access at"


def test_summary_warns_when_only_torch_kernels_are_reported(tmp_path):
    fake_run(tmp_path / "w", race=True)
    log = tmp_path / "w" / "sanitize_racecheck.log"
    log.write_text(SANITIZER_RACE.replace("mattingloss::(anonymous namespace)::", "at::native::"))
    code, text, _ = summarize(tmp_path / "w", tmp_path / "o")
    assert re.search(r"^racecheck\s+WARN\s+40s\s+errors: 2; 48 cases \(all in kernels outside mattingloss\)$",
                     text, re.M)
    assert code == 0 and "PASS: every step passed on the GPU (WARN: racecheck reported errors only" in text


def test_summary_fails_when_a_gpu_test_was_skipped(tmp_path):
    fake_run(tmp_path / "w", skipped_cuda=1)
    code, text, _ = summarize(tmp_path / "w", tmp_path / "o")
    assert code == 1 and "FAIL: tests" in text and "skipped: t: needs a CUDA GPU" in text


def test_summary_without_gpu_exits_2(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "env.json").write_text(json.dumps({"gpu": False, "torch": "2.14.1"}))
    (work / "steps.tsv").write_text("env\t0\t2\tno GPU\nmemcheck\tskip\t0\tno GPU visible\n")
    code, text, _ = summarize(work, tmp_path / "o")
    assert code == 2 and "NO GPU" in text and re.search(r"^memcheck\s+skipped\s+0s\s+no GPU visible$", text, re.M)


@pytest.mark.skipif(os.name != "posix", reason="bash script")
def test_gpu_check_sh_needs_an_outdir():
    import subprocess
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True)
    assert result.returncode == 64 and "usage" in result.stderr


def test_summary_of_a_partial_rerun(tmp_path):
    fake_run(tmp_path / "w")
    work = tmp_path / "w"
    env = json.loads((work / "env.json").read_text())
    (work / "env.json").write_text(json.dumps({**env, "steps": "build,bench"}))
    (work / "steps.tsv").write_text("env\t0\t3\t\nbuild\t0\t80\t\nbench\t0\t200\tok\n")
    code, text, _ = summarize(work, tmp_path / "o")
    assert code == 0 and "PASS: env, build, bench passed on the GPU (GPU_CHECK_STEPS chose these)" in text
    (work / "steps.tsv").write_text("env\t0\t3\t\nbuild\t0\t80\t\n")  # bench cut before it recorded
    code, text, _ = summarize(work, tmp_path / "o")
    assert code == 1 and "INCOMPLETE: bench did not run" in text
