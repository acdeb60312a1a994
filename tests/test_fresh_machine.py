"""A machine with nothing optional: `tlcourse fetch` and the notebooks' asset loading, end to end.

CI runs on the developer's own machine, where optional things may have been
installed by hand (Debian's full Fashion-MNIST, a warm torch hub cache, a
converted SmolLM2). These tests point every place such a copy could live at
an empty folder — system paths (``TLCOURSE_SYSTEM_ROOT``), the tlcourse
cache, torch hub, the Hugging Face and XDG caches — so what passes here is
what a fresh clone sees after `pip install`. Only the installed packages (the
project's own requirements) stay visible.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from tlcourse.assets import REGISTRY, PackageSource, SystemSource
from tlcourse.assets._types import AssetFile
from tlcourse.cli import main

QUICK_NEEDS = sorted(n for n, a in REGISTRY.items() if a.required("quick"))
def _from_installed_package(asset) -> bool:
    """An optional asset shipped by a wheel installed by hand (notebook 10's Whisper): found even on a bare machine."""
    return any(isinstance(s, PackageSource) and s.directory() is not None and s.directory().is_dir()
               for s in asset.sources)


OPTIONAL = sorted(n for n, a in REGISTRY.items()
                  if not a.required("quick") and a.files and not _from_installed_package(a))
HUB_FILE = "mobilenet_v2-b0353104.pth"


def bare_machine(tmp_path: pathlib.Path) -> dict[str, str]:
    """The environment of a machine with no optional asset: every cache and system path empty, offline."""
    env = dict(os.environ)
    for var in ("TLCOURSE_SYSTEM_ROOT", "TLCOURSE_CACHE", "TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME"):
        folder = tmp_path / var.lower()
        folder.mkdir()
        env[var] = str(folder)
    env.update(TLCOURSE_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TLCOURSE_PROFILE="quick",
               MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _status(out: str, name: str) -> str | None:
    """The first word of the line `fetch` printed for ``name`` (ok / FAIL / optional)."""
    for line in out.splitlines():
        words = line.replace(":", " ").split()
        if len(words) >= 2 and words[1] == name:
            return words[0]
    return None


@pytest.mark.slow
def test_fetch_on_a_bare_machine_verifies_what_the_quick_profile_needs(tmp_path):
    env = bare_machine(tmp_path)
    done = _run(["-m", "tlcourse.cli", "fetch", "--no-convert"], env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert {n: _status(out, n) for n in QUICK_NEEDS} == {n: "ok" for n in QUICK_NEEDS}, out
    assert {n: _status(out, n) for n in OPTIONAL} == {n: "optional" for n in OPTIONAL}, out
    assert "make full-data" in out  # the optional full data names the command that adds it
    # torch hub's cache was seeded in the empty TORCH_HOME although the full data set is missing
    assert (pathlib.Path(env["TORCH_HOME"]) / "hub" / "checkpoints" / HUB_FILE).is_file()

    # what the notebooks then load, in the same bare environment
    script = """
import torchvision
from tlcourse import load_backbone, load_fashion_mnist
from tlcourse.data import load_digits, load_imagenet_samples, load_mnist5k, load_rotten_tomatoes
from tlcourse.text import load_text_encoder
torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")  # the weights API, offline, from the seeded cache
load_backbone("mobilenet_v2", image_size=32)
load_backbone("efficientnet_lite0", image_size=32)
load_text_encoder()
sizes = [len(load_fashion_mnist("train")), len(load_mnist5k("all")), len(load_digits()),
         len(load_rotten_tomatoes("test")), len(load_imagenet_samples())]
print("LOADED", sizes)
"""
    done = _run(["-c", script], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED [6000, 5000, 1797," in done.stdout


@pytest.mark.slow
def test_fetch_profile_full_is_strict_on_a_bare_machine(tmp_path):
    done = _run(["-m", "tlcourse.cli", "fetch", "--profile", "full", "--no-convert"], bare_machine(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert _status(out, "fashion-mnist") == "FAIL" and "make full-data" in out
    assert {n: _status(out, n) for n in QUICK_NEEDS} == {n: "ok" for n in QUICK_NEEDS}, out


def test_a_missing_quick_asset_still_fails_fetch(tmp_path, monkeypatch, fresh_cache, isolated_torch_hub, capsys):
    monkeypatch.setitem(REGISTRY, "digits", dataclasses.replace(
        REGISTRY["digits"], sources=(SystemSource(str(tmp_path / "nowhere"), "pip install scikit-learn"),)))
    assert main(["fetch", "--no-convert"]) == 1
    out = capsys.readouterr().out
    assert _status(out, "digits") == "FAIL" and "required asset(s) missing: digits" in out


def test_hub_seeding_and_smollm2_conversion_do_not_depend_on_other_assets(
        tmp_path, monkeypatch, fresh_cache, isolated_torch_hub, capsys):
    import tlcourse.text
    converted = []
    monkeypatch.setattr(tlcourse.text, "prepare_causal_lm", lambda: converted.append(1) or tmp_path)
    monkeypatch.setitem(REGISTRY, "digits", dataclasses.replace(
        REGISTRY["digits"], sources=(SystemSource(str(tmp_path / "nowhere")),)))
    assert main(["fetch"]) == 1  # a required asset is missing ...
    assert (isolated_torch_hub / HUB_FILE).is_file()  # ... yet the hub cache is seeded
    assert converted == [1]  # ... and SmolLM2 converted


def _idx(array: np.ndarray) -> bytes:
    """An IDX file (the MNIST format): magic with dtype code 0x08 (uint8) and the rank, the dims, the bytes."""
    head = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return head + array.astype(np.uint8).tobytes()


@pytest.fixture
def planted_fashion_mnist(tmp_path, monkeypatch):
    """A small Fashion-MNIST with the real file names and layout, planted as Debian's system copy,
    and the registry entry's hashes replaced by the planted files' own."""
    rng = np.random.default_rng(0)
    root = tmp_path / "system"
    folder = root / SystemSource("/usr/share/datasets/fashion-mnist").path.lstrip("/")
    folder.mkdir(parents=True)
    data = {"train": (rng.integers(0, 256, (30, 28, 28)), np.arange(30) % 10),
            "t10k": (rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10)}
    files = []
    for stem, (images, labels) in data.items():
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = folder / f"{stem}-{kind}-ubyte.gz"
            path.write_bytes(gzip.compress(_idx(array), mtime=0))
            files.append(AssetFile(path.name, hashlib.sha256(path.read_bytes()).hexdigest()))
    entry = REGISTRY["fashion-mnist"]
    assert {f.name for f in files} == {f.name for f in entry.files}, "the planted copy must match the real layout"
    monkeypatch.setitem(REGISTRY, "fashion-mnist", dataclasses.replace(entry, files=tuple(files)))
    monkeypatch.setenv("TLCOURSE_SYSTEM_ROOT", str(root))
    return data


def test_full_profile_reads_a_planted_system_copy(planted_fashion_mnist, fresh_cache, isolated_torch_hub, capsys):
    from tlcourse import load_fashion_mnist
    test = load_fashion_mnist("test", source="full")
    images, labels = planted_fashion_mnist["t10k"]
    assert np.array_equal(test.images, images) and np.array_equal(test.labels, labels)
    assert main(["fetch", "--profile", "full", "--no-convert"]) == 0
    out = capsys.readouterr().out
    assert _status(out, "fashion-mnist") == "ok" and "system" in out


def test_system_root_moves_every_system_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_SYSTEM_ROOT", str(tmp_path))
    for asset in REGISTRY.values():
        for src in asset.sources:
            if isinstance(src, SystemSource):
                assert tmp_path in src.directory().parents, (asset.name, src.directory())
