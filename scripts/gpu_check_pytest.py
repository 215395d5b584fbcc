"""pytest plugin for scripts/gpu_check.sh: selects the tests that have a CUDA
variant and reports how many CUDA tests ran, failed or were skipped.

Loaded with ``-p gpu_check_pytest`` (scripts/ on PYTHONPATH). Environment:
  GPU_CHECK_SELECT  "cuda": only CUDA tests (the GPU run);
                    "twins": CUDA tests plus the CPU variant of every test that is
                    parametrized over the ``device`` fixture (the CPU-machine run:
                    the CUDA tests skip there, their CPU twins test the shared math);
                    unset: no selection (every collected test).
  GPU_CHECK_DESELECT  a regular expression: tests whose id it matches are left out
                    (to run the rest past a test that crashes the process).
  GPU_CHECK_REPORT  path of a JSON report written at the end of the session.

A test counts as a CUDA test when its id names CUDA (``[cuda]`` parameters,
``test_cuda_*`` names) or when it carries a skipif mark whose reason mentions
CUDA or a GPU (how tests/ marks tests that need a GPU).
"""
import json
import os
import re

_GPU_WORDS = re.compile(r"cuda|gpu", re.IGNORECASE)


def is_cuda_test(item) -> bool:
    if "cuda" in item.nodeid.lower():
        return True
    for mark in item.iter_markers("skipif"):
        if _GPU_WORDS.search(str(mark.kwargs.get("reason", ""))):
            return True
    return False


def is_cpu_twin(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and str(callspec.params.get("device", "")) == "cpu"


class _Recorder:
    def __init__(self, mode, report):
        self.mode, self.report = mode, report
        self.cuda_ids = set()
        self.results = {}  # nodeid -> (outcome, detail)
        self.selected = 0

    def pytest_collection_modifyitems(self, session, config, items):
        keep, drop = [], []
        deselect = os.environ.get("GPU_CHECK_DESELECT")
        for item in items:
            if deselect and re.search(deselect, item.nodeid):
                drop.append(item)
                continue
            cuda = is_cuda_test(item)
            if cuda:
                self.cuda_ids.add(item.nodeid)
            if self.mode == "cuda":
                wanted = cuda
            elif self.mode == "twins":
                wanted = cuda or is_cpu_twin(item)
            else:
                wanted = True
            (keep if wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        self.selected = len(items)

    def pytest_runtest_logreport(self, report):
        # A test's outcome: the first failure or skip of any phase, else the call's pass.
        previous = self.results.get(report.nodeid)
        if previous and previous[0] != "passed":
            return
        if report.failed:
            self.results[report.nodeid] = ("failed", report.when)
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.results[report.nodeid] = ("skipped", reason)
        elif report.when == "call":
            self.results[report.nodeid] = ("passed", "")

    def pytest_sessionfinish(self, session, exitstatus):
        if not self.report:
            return
        counts = {"cuda": {"passed": 0, "failed": 0, "skipped": 0},
                  "other": {"passed": 0, "failed": 0, "skipped": 0}}
        skipped_cuda, failed = [], []
        for nodeid, (outcome, detail) in self.results.items():
            kind = "cuda" if nodeid in self.cuda_ids else "other"
            counts[kind][outcome] += 1
            if outcome == "skipped" and kind == "cuda":
                skipped_cuda.append(f"{nodeid}: {detail}")
            if outcome == "failed":
                failed.append(nodeid)
        data = {"mode": self.mode or "all", "selected": self.selected, "exitstatus": int(exitstatus),
                "counts": counts, "cuda_selected": len(self.cuda_ids),
                "skipped_cuda": skipped_cuda, "failed": failed}
        with open(self.report, "w") as fh:
            json.dump(data, fh, indent=1)


def pytest_configure(config):
    config.pluginmanager.register(
        _Recorder(os.environ.get("GPU_CHECK_SELECT", ""), os.environ.get("GPU_CHECK_REPORT", "")),
        "gpu_check_recorder")
