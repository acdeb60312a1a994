"""Shared by the benchmark scripts: the machine description, load readings and JSON output.

Other jobs may share the CPU while a benchmark runs, so every result carries
the load average read before and after it; ratios measured side by side in
one run are the figures to trust, absolute seconds only on this machine.
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"


def uptime_line() -> str:
    """The `uptime` output (load averages), or the load from os.getloadavg if uptime is missing."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict:
    """What the numbers were measured on: CPU model, cores, memory, library versions, GPU if any."""
    import torch

    cpu_model = platform.processor() or "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def summary(values) -> dict:
    """Median with min and max (and mean ± std for seeds) of a list of numbers."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summary() needs at least one value")
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


class Recorder:
    """Collects one benchmark's rows and writes them atomically as JSON, with machine and load."""

    def __init__(self, name: str, out_dir: str | os.PathLike | None, profile: str, **settings):
        self.name = name
        self.path = pathlib.Path(out_dir or RESULTS_DIR) / f"{name}.json"
        self.data = {"benchmark": name, "profile": profile, "settings": settings, "machine": machine(),
                     "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "uptime_before": uptime_line(), "rows": [], "notes": []}
        self._t0 = time.perf_counter()

    def add(self, row: dict) -> dict:
        self.data["rows"].append(row)
        return row

    def save(self, **extra) -> pathlib.Path:
        sys.path.insert(0, str(ROOT))
        from tlcourse._io import atomic_open

        self.data.update(extra)
        self.data["uptime_after"] = uptime_line()
        self.data["elapsed_s"] = time.perf_counter() - self._t0
        with atomic_open(self.path, "w") as fh:
            json.dump(self.data, fh, indent=1, default=float)
            fh.write("\n")
        return self.path
