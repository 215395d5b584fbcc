"""Smoke test of examples/finetune_vitmatte.py: Hugging Face's VitMatteForImageMatting
trained a few steps with presets.vitmatte(), end to end.

Needs the example's optional dependencies (transformers, scikit-image, pillow: the
`hf` and `test` extras); skipped without them.
"""
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("skimage")
pytest.importorskip("PIL")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "finetune_vitmatte.py"
NUMBER = r"([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf))"


def test_vitmatte_example_trains(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "3", "--batch-size", "2", "--size", "64", "--eval-samples", "4",
         "--device", "cpu", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"example failed:\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    step = re.search(rf"step\s+3/3\s+unknown_l1_loss {NUMBER}\s+known_l1_loss {NUMBER}\s+loss_pha_laplacian "
                     rf"{NUMBER}\s+loss_gradient_penalty {NUMBER}\s+total {NUMBER}", out)
    assert step, out
    terms = [float(v) for v in step.groups()]
    assert all(math.isfinite(v) and v >= 0 for v in terms)
    assert abs(sum(terms[:4]) - terms[4]) <= 1e-3 * terms[4]  # the total ViTMatte trains on is their sum
    sad = re.search(rf"trained ViTMatte:\s+SAD {NUMBER}\s+MSE {NUMBER}", out)
    assert sad and math.isfinite(float(sad.group(1))) and 0 <= float(sad.group(2)) <= 1, out
    png = tmp_path / "vitmatte_example.png"
    assert png.is_file() and png.stat().st_size > 0
