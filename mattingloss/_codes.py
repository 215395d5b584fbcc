"""Every integer code the ops take, in one place: the Python twin of csrc/codes.h
(tests/test_codes.py checks that the two agree)."""

# How a mask is read (every op with a trimap or weight).
MASK_EQUAL, MASK_RANGE, MASK_WEIGHT, MASK_ALL = 0, 1, 2, 3  # MASK_ALL: no mask, every pixel counts
TRIMAP_MODES = (MASK_EQUAL, MASK_RANGE)  # the modes that read a trimap

# Reductions of the DIM and composition ops.
REDUCTIONS = {"mean": 0, "sample": 1, "sum": 2, "none": 3}
NONE = REDUCTIONS["none"]
SHARED_SCALE = (REDUCTIONS["mean"], REDUCTIONS["sum"])  # one backward factor for the whole batch

# The per-pixel penalty of the composition op (L1, Charbonnier, L2) and the alpha/Sobel op (L1, Charbonnier).
RHOS = {"l1": 0, "charbonnier": 1, "l2": 2}

# The alpha/Sobel op: the Sobel term, the columns of its per-sample sums, how compose normalises a term.
SOBEL_NONE, SOBEL_DIFF, SOBEL_MAGNITUDE = 0, 1, 2
SUM_UNKNOWN, SUM_KNOWN, SUM_W_UNKNOWN, SUM_W_KNOWN, SUM_SOBEL_X, SUM_SOBEL_Y, SUM_PEN_X, SUM_PEN_Y = range(8)
N_SUMS = 8
NORMS = {"mean": 0, "sample": 1, "sum": 2, "numel": 3, "vitmatte": 4}  # -1: the term is off

# The Laplacian op: padding and how a weight enters the pyramid.
PADDINGS = {"reflect": 0, "replicate": 1}
LAP_NO_WEIGHT, LAP_WEIGHT_AFTER, LAP_MASK_BEFORE = 0, 1, 2
LAP_MAX_LEVELS = 16
