"""Smoke test of examples/train_matting.py: a few tiny steps, end to end.

Needs the example's optional dependencies (``pip install scikit-image pillow``);
skipped without them.
"""
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("skimage")
pytest.importorskip("PIL")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_matting.py"
TINY = ["--steps", "3", "--batch-size", "4", "--size", "32", "--eval-samples", "4", "--device", "cpu"]
NUMBER = r"([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf))"


def run_example(out, *extra):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *TINY, "--out", str(out), *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"example failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def final_metrics(stdout):
    m = re.search(rf"trained network:\s+SAD {NUMBER}\s+MSE {NUMBER}", stdout)
    assert m, f"no 'trained network: SAD .. MSE ..' line in:\n{stdout}"
    return float(m.group(1)), float(m.group(2))


def test_example_runs(tmp_path):
    stdout = run_example(tmp_path)
    assert re.search(r"step\s+3/3\s+loss " + NUMBER, stdout), stdout
    loss = float(re.search(r"step\s+3/3\s+loss " + NUMBER, stdout).group(1))
    assert math.isfinite(loss) and loss >= 0
    sad, mse = final_metrics(stdout)
    assert math.isfinite(sad) and math.isfinite(mse), stdout
    assert sad >= 0 and 0 <= mse <= 1, stdout
    png = tmp_path / "matting_example.png"
    assert png.is_file() and png.stat().st_size > 0
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 0 and im.height > 0


def test_example_is_deterministic_on_cpu(tmp_path):
    first = run_example(tmp_path / "a", "--seed", "7")
    second = run_example(tmp_path / "b", "--seed", "7")
    losses = lambda s: re.findall(r"loss " + NUMBER, s)
    assert losses(first) == losses(second)
    assert final_metrics(first) == final_metrics(second)
