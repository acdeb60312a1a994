"""How many CPU threads torch gets: the grader's count, a container's quota, or every core.

More torch threads than cores is the failure this guards against: two grading kernels on 2 cores, each
with 2 OpenMP threads, made a 2 s solution cell take 50-60 s (measured on notebook 06).
"""
from __future__ import annotations

import os

import pytest
import torch

from tlcourse import device


def _tree(tmp_path, proc_lines: str, files: dict[str, str]):
    proc = tmp_path / "proc_cgroup"
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc.write_text(proc_lines)
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(proc), str(root)


def test_cgroup_v1_quota_in_cores(tmp_path):
    proc, root = _tree(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert device._cgroup_cpu_quota(proc, root) == pytest.approx(1.5)


def test_the_tightest_ancestor_quota_wins_and_unlimited_is_none(tmp_path):
    proc, root = _tree(tmp_path, "3:cpu:/a/b\n", {
        "cpu/a/b/cpu.cfs_quota_us": "-1", "cpu/a/b/cpu.cfs_period_us": "100000",
        "cpu/a/cpu.cfs_quota_us": "200000", "cpu/a/cpu.cfs_period_us": "100000",
        "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert device._cgroup_cpu_quota(proc, root) == pytest.approx(2.0)
    proc, root = _tree(tmp_path / "free", "3:cpu:/a\n", {"cpu/a/cpu.cfs_quota_us": "-1",
                                                          "cpu/a/cpu.cfs_period_us": "100000"})
    assert device._cgroup_cpu_quota(proc, root) is None


def test_cgroup_v2_quota_pure_and_hybrid(tmp_path):
    proc, root = _tree(tmp_path / "pure", "0::/job\n", {"cgroup.controllers": "cpu memory pids",
                                                         "job/cpu.max": "50000 100000\n"})
    assert device._cgroup_cpu_quota(proc, root) == pytest.approx(0.5)
    proc, root = _tree(tmp_path / "hybrid", "3:cpu:/\n0::/job\n", {"unified/job/cpu.max": "max 100000\n",
                                                                    "cpu/cpu.cfs_quota_us": "-1"})
    assert device._cgroup_cpu_quota(proc, root) is None


def test_available_cpus_rounds_a_quota_down_but_never_to_zero(monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: set(range(8)))
    for quota, cores in ((None, 8), (2.5, 2), (0.5, 1), (16.0, 8)):
        monkeypatch.setattr(device, "_cgroup_cpu_quota", lambda q=quota: q)
        assert device.available_cpus() == cores, quota


@pytest.fixture
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def test_set_threads_order_explicit_then_tlcourse_then_omp_then_cores(monkeypatch, restore_threads):
    monkeypatch.setattr(device, "available_cpus", lambda: 3)
    monkeypatch.delenv("TLCOURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert device.set_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert device.set_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: not ours to read
    assert device.set_threads() == 3
    monkeypatch.setenv("TLCOURSE_THREADS", "1")  # the grader sets this for every kernel
    assert device.set_threads() == 1
    assert device.set_threads(2) == 2


def test_a_bad_thread_count_says_what_to_do(monkeypatch, restore_threads):
    monkeypatch.setenv("TLCOURSE_THREADS", "two")
    with pytest.raises(ValueError, match="TLCOURSE_THREADS must be a positive integer"):
        device.set_threads()


def test_this_machine_has_no_quota_below_its_cores():
    """The real files: whatever they say, the answer is a usable core count."""
    assert 1 <= device.available_cpus() <= len(os.sched_getaffinity(0))


def test_one_thread_runs_small_cpu_work_on_one_thread_and_restores(monkeypatch, restore_threads):
    monkeypatch.delenv("TLCOURSE_DEVICE", raising=False)
    torch.set_num_threads(2)
    with device.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2

    @device.one_thread()
    def small_job():
        return torch.get_num_threads()

    assert small_job() == 1 and torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), device.one_thread():
        raise RuntimeError("a failing step")
    assert torch.get_num_threads() == 2, "an error inside must not leave torch on one thread"


def test_one_thread_leaves_a_gpu_run_alone(monkeypatch, restore_threads):
    torch.set_num_threads(2)
    monkeypatch.setattr(device, "pick_device", lambda prefer=None: torch.device("cuda"))
    with device.one_thread():
        assert torch.get_num_threads() == 2
