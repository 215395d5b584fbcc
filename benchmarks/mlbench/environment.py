"""Where the benchmark runs: device, threads, versions, date, and how busy the machine is."""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Environment:
    device: torch.device
    device_type: str
    device_name: str
    torch_version: str
    threads: int
    date: str
    mattingloss_version: str = ""
    git_commit: str = ""

    @property
    def slug(self) -> str:
        """The results files' name: ``cpu-amd-epyc-2threads``, ``cuda-nvidia-h100-80gb-hbm3``."""
        name = re.sub(r"[^a-z0-9]+", "-", self.device_name.lower()).strip("-") or "unknown"
        if self.device_type == "cpu":
            return f"cpu-{name}-{self.threads}threads"
        return f"cuda-{name}"

    def meta(self) -> dict:
        return {
            "device_type": self.device_type,
            "device_name": self.device_name,
            "torch_version": self.torch_version,
            "threads": self.threads,
            "date": self.date,
        }


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def detect_environment(choice: str) -> Environment:
    import mattingloss

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench.py: --device cuda but CUDA is not available")
    device = torch.device(choice)
    name = torch.cuda.get_device_name(device) if choice == "cuda" else cpu_model_name()
    return Environment(device, choice, name, torch.__version__, torch.get_num_threads(),
                       datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                       getattr(mattingloss, "__version__", ""), git_commit())


def git_commit() -> str:
    """The checkout's commit (with "+dirty" when it has changes), or "" outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("+dirty" if commit and dirty else "")


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def other_cpu_use(seconds: float = 0.5) -> float | None:
    """Busy share of all CPUs over ``seconds`` while this process sleeps (Linux /proc/stat).

    Everything busy then is another process: a CPU benchmark run beside it is noisy.
    """
    def sample():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle  # guest time is already in user

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return None if total <= 0 else 1.0 - (idle1 - idle0) / total


class Progress:
    """``[i/N] what`` lines on stderr as the run goes; ``note`` for indented detail."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def __call__(self, text: str):
        self.done += 1
        print(f"[{self.done}/{self.total} {time.perf_counter() - self.started:4.0f} s] {text}",
              file=sys.stderr, flush=True)

    @staticmethod
    def note(text: str):
        print(f"    {text}", file=sys.stderr, flush=True)
