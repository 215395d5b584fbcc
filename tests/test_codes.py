"""mattingloss/_codes.py and csrc/codes.h give every code the same value (the ops
read them as plain integers, so a mismatch would be a silently wrong loss)."""
import pathlib
import re

import pytest

from mattingloss import _codes

HEADER = pathlib.Path(__file__).resolve().parents[1] / "csrc" / "codes.h"


def header_codes():
    if not HEADER.exists():
        pytest.skip("csrc/codes.h is not in this checkout (an installed package)")
    text = HEADER.read_text()
    return {name: int(value) for name, value in re.findall(r"\b(k\w+) = (-?\d+)", text)}


PAIRS = {
    "kUnknownEqual": _codes.MASK_EQUAL, "kUnknownRange": _codes.MASK_RANGE, "kWeight": _codes.MASK_WEIGHT,
    "kAllPixels": _codes.MASK_ALL,
    "kMean": _codes.REDUCTIONS["mean"], "kSample": _codes.REDUCTIONS["sample"], "kSum": _codes.REDUCTIONS["sum"],
    "kNone": _codes.REDUCTIONS["none"],
    "kL1": _codes.RHOS["l1"], "kCharbonnier": _codes.RHOS["charbonnier"], "kL2": _codes.RHOS["l2"],
    "kSobelNone": _codes.SOBEL_NONE, "kSobelDiff": _codes.SOBEL_DIFF, "kSobelMagnitude": _codes.SOBEL_MAGNITUDE,
    "kSumUnknown": _codes.SUM_UNKNOWN, "kSumKnown": _codes.SUM_KNOWN, "kSumWUnknown": _codes.SUM_W_UNKNOWN,
    "kSumWKnown": _codes.SUM_W_KNOWN, "kSumSobelX": _codes.SUM_SOBEL_X, "kSumSobelY": _codes.SUM_SOBEL_Y,
    "kSumPenaltyX": _codes.SUM_PEN_X, "kSumPenaltyY": _codes.SUM_PEN_Y, "kAgSums": _codes.N_SUMS,
    "kNormMean": _codes.NORMS["mean"], "kNormSample": _codes.NORMS["sample"], "kNormSum": _codes.NORMS["sum"],
    "kNormNumel": _codes.NORMS["numel"], "kNormVitmatte": _codes.NORMS["vitmatte"],
    "kReflect": _codes.PADDINGS["reflect"], "kReplicate": _codes.PADDINGS["replicate"],
    "kNoWeight": _codes.LAP_NO_WEIGHT, "kWeightAfter": _codes.LAP_WEIGHT_AFTER, "kMaskBefore": _codes.LAP_MASK_BEFORE,
    "kMaxLevels": _codes.LAP_MAX_LEVELS,
}


def test_every_code_agrees_with_the_header():
    header = header_codes()
    assert {name: header.get(name) for name in PAIRS} == PAIRS
    # every code of the header has its Python twin (kNormOff is "-1: off" in NORMS' comment)
    assert set(header) - set(PAIRS) == {"kNormOff"} and header["kNormOff"] == -1
