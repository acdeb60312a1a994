"""The on-disk tensor cache (tlcourse/cache.py): shared with the grading kernels, never a cause of failure."""
import os
import warnings

import pytest
import torch

from tlcourse import cache


@pytest.fixture
def entry(fresh_cache):
    return cache.cache_path("features", "test-entry")


def test_an_entry_is_readable_by_all(entry):
    # Grading kernels run as another user and read the instructor's cache: an owner-only
    # entry would make every student's kernel recompute it, or fail.
    cache.save_cached(entry, {"x": torch.arange(3)})
    assert entry.stat().st_mode & 0o777 == 0o644
    assert torch.equal(cache.load_cached(entry)["x"], torch.arange(3))


def test_an_owner_only_entry_from_an_older_run_is_opened_up_on_load(entry):
    cache.save_cached(entry, torch.ones(2))
    entry.chmod(0o600)
    assert torch.equal(cache.load_cached(entry), torch.ones(2))
    assert entry.stat().st_mode & 0o777 == 0o644


def test_an_unwritable_cache_warns_and_still_returns_the_value(fresh_cache):
    blocked = fresh_cache / "features"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the folder should be")
    path = cache.cache_path("features", "k")
    with pytest.warns(UserWarning, match="recomputed next time"):
        value = cache.save_cached(path, torch.zeros(1))
    assert torch.equal(value, torch.zeros(1))
    assert cache.load_cached(path) is None


def test_an_unreadable_entry_in_a_read_only_cache_is_a_miss_not_an_error(entry, monkeypatch):
    # What a confined grading kernel sees: the entry cannot be loaded and cannot be deleted.
    cache.save_cached(entry, torch.ones(1))

    def refuse(*a, **k):
        raise PermissionError("denied")

    def read_only(self, missing_ok=False):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(type(entry), "unlink", read_only)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.load_cached(entry) is None
    assert entry.exists()


def test_a_corrupt_entry_is_deleted_and_missed(entry):
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(b"not a torch file")
    assert cache.load_cached(entry) is None and not entry.exists()
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")], "no temporary file left"
    assert os.listdir(entry.parent) == []
