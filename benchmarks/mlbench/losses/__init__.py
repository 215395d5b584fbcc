"""The registry: every loss the benchmark knows, in the order it runs and reports them.

To add a loss: write ``losses/<name>.py`` ending in ``BENCH = LossBench(...)`` (copy dim.py)
and add its module to the list below.
"""
from . import composition, connectivity, dim, laplacian, metrics, rvm, trimap, vitmatte, vitmatte_trio

LOSSES = {module.BENCH.name: module.BENCH
          for module in (dim, composition, laplacian, vitmatte_trio, vitmatte, rvm, trimap, metrics, connectivity)}
