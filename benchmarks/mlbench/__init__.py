"""The pieces of ``benchmarks/bench.py``, one job per module.

cases.py        sizes, dtype rows, realistic matting inputs, the Case a loss is timed on
spec.py         LossBench: what a loss file declares (contenders, cases, bytes it must move)
losses/         one file per loss; losses/__init__.py lists them (the registry)
check.py        every contender against the fused one, before anything is timed
timing.py       repetitions, warm-up, interleaved rounds, median and p20/p80
memory.py       peak extra memory (CUDA allocator stats; CPU allocator records via the profiler)
runner.py       one case: check, the copy yardstick, the (contender x mode) grid, its rows
report.py       the tables, the fused ratios, CSV/JSON/txt and one PNG chart per loss
environment.py  device, threads, torch version, date, git commit, how busy the machine is
"""
