"""The asset registry and resolver: verified files, clear errors, no network."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import socket
import urllib.request

import pytest
import torch
import torchvision

from tlcourse.assets import (REGISTRY, AssetError, UnknownAssetError, cache_root, get_asset, is_online,
                             resolve, seed_torch_hub, verify_file)
from tlcourse.assets._types import PackageSource, SystemSource, UrlSource
from tlcourse.assets.registry import TORCHVISION_URL
from tlcourse.backbones import load_backbone

# What every setup must provide; the full-profile data is tested with a planted copy (test_fresh_machine.py).
OFFLINE = sorted(n for n, a in REGISTRY.items() if a.required("quick"))
ONLINE_ONLY_TV = sorted(n for n, a in REGISTRY.items() if not a.offline and a.files)
TORCHVISION_ENTRIES = sorted(n for n, a in REGISTRY.items() if a.meta.get("weights_enum"))
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


def _package_copy(name: str) -> pathlib.Path:
    """The file as shipped by the entry's installed package (not the cache, not torch hub)."""
    asset = get_asset(name)
    src = next(s for s in asset.sources if isinstance(s, PackageSource))
    return src.directory() / asset.files[0].name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the network guard (conftest)

def test_socket_block_refuses_public_addresses():
    with pytest.raises(OSError, match="network blocked in tests"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(OSError, match="network blocked in tests"):  # refused before any DNS lookup
        socket.create_connection(("huggingface.co", 443), timeout=1)
    for family, addr in [(socket.AF_INET, ("8.8.8.8", 53)), (socket.AF_INET6, ("2001:4860:4860::8888", 53))]:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            with pytest.raises(OSError, match="network blocked in tests"):
                s.connect(addr)
            with pytest.raises(OSError, match="network blocked in tests"):
                s.connect_ex(addr)
        finally:
            s.close()


def test_socket_block_allows_loopback():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    port = server.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            c.connect(("localhost", port))
        finally:
            c.close()
    finally:
        server.close()


def test_is_online_is_false_when_sockets_are_blocked(monkeypatch):
    # even without the offline switches, the probe must fail fast and say offline
    monkeypatch.delenv("TLCOURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert is_online(timeout=1) is False


def test_session_environment_is_pinned(_offline_session):
    from tlcourse.profile import profile

    assert profile().name == "quick"
    assert is_online() is False
    assert _offline_session in cache_root().parents
    assert _offline_session in pathlib.Path(torch.hub.get_dir()).parents


# ------------------------------------------------------------------ resolution of shipped assets

@pytest.mark.parametrize("name", OFFLINE)
def test_every_offline_asset_resolves_and_verifies(name):
    asset = get_asset(name)
    found = resolve(name)
    assert found.asset is asset
    assert set(found.files) == {f.name for f in asset.files}
    for f in asset.files:
        path = found[f.name]
        assert path.is_file() and path.stat().st_size > 0
        assert verify_file(path, f), f"{name}: {f.name} does not verify"
        if f.sha256:  # independently of the resolver's memo
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            assert h.hexdigest() == f.sha256


def test_aliases_resolve_to_the_same_entry():
    assert get_asset("MobileNetV2") is REGISTRY["mobilenet_v2"]
    assert get_asset("efficientnet-lite0") is REGISTRY["efficientnet_lite0"]
    assert get_asset(REGISTRY["digits"]) is REGISTRY["digits"]


def test_unknown_name_suggests_a_close_match():
    with pytest.raises(UnknownAssetError) as info:
        get_asset("mobilenet_v3")
    msg = str(info.value)
    assert "'mobilenet_v3'" in msg and "Did you mean" in msg and "'mobilenet_v2'" in msg
    assert "Known assets:" in msg and "efficientnet_lite0" in msg
    assert isinstance(info.value, AssetError) and isinstance(info.value, KeyError)
    with pytest.raises(AssetError, match="Did you mean 'resnet50'"):
        resolve("resnet5O")


def test_unknown_name_without_close_match_still_lists_known_assets():
    with pytest.raises(UnknownAssetError) as info:
        get_asset("zzzz-qqqq")
    assert "Did you mean" not in str(info.value) and "mobilenet_v2" in str(info.value)


# ------------------------------------------------------------------ corrupt copies

@pytest.mark.parametrize("name", ["mobilenet_v2", "digits"])
def test_corrupt_cache_copy_is_quarantined_and_never_returned(name, fresh_cache):
    asset = get_asset(name)
    fname = asset.files[0].name
    bad = cache_root() / "assets" / asset.name / fname
    assert fresh_cache in bad.parents
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not the file you are looking for" * 100)

    found = resolve(name)

    assert found.path != bad and bad not in found.files.values()
    assert verify_file(found.path, asset.files[0])
    assert not bad.exists()
    quarantined = bad.with_name(fname + ".corrupt")
    assert quarantined.read_bytes().startswith(b"this is not the file")
    assert not found.source.startswith("cache ")  # fell through to another source, not the tlcourse cache
    # and again: the cache now holds nothing usable, the fall-through still works
    assert verify_file(resolve(name).path, asset.files[0])


def test_corrupt_explicit_path_raises_and_is_left_alone(tmp_path):
    bad = tmp_path / MOBILENET_FILE
    bad.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(AssetError) as info:
        resolve("mobilenet_v2", path=bad)
    assert "corrupt" in str(info.value)
    assert str(tmp_path) in str(info.value)
    assert bad.read_bytes() == b"\x00garbage" * 1000  # a user's own file is not renamed


def test_good_explicit_path_is_used(tmp_path):
    good = tmp_path / MOBILENET_FILE
    good.write_bytes(_package_copy("mobilenet_v2").read_bytes())
    found = resolve("mobilenet_v2", path=good)
    assert found.path == good
    assert found.source.startswith("explicit path")


# ------------------------------------------------------------------ online-only assets

@pytest.mark.parametrize("name", ONLINE_ONLY_TV)
def test_online_only_asset_offline_names_alternatives_and_fix(name, isolated_torch_hub, fresh_cache):
    with pytest.raises(AssetError) as info:
        resolve(name)
    msg = str(info.value)
    assert f"{name!r} has no offline copy" in msg
    assert "Offline alternatives:" in msg and "mobilenet_v2" in msg and "efficientnet_lite0" in msg
    assert f"tlcourse fetch {name}" in msg
    assert "skipped (offline)" in msg


def test_online_only_backbone_offline_raises_asset_error(isolated_torch_hub, fresh_cache):
    with pytest.raises(AssetError, match="mobilenet_v2"):
        load_backbone("resnet18")
    with pytest.raises(AssetError, match="mobilenet_v2"):
        load_backbone("xception")  # without timm, or with timm but offline


# ------------------------------------------------------------------ agreement with torchvision

def _weights_enum(asset):
    cls, member = asset.meta["weights_enum"].split(".")
    return getattr(getattr(torchvision.models, cls), member)


@pytest.mark.parametrize("name", TORCHVISION_ENTRIES)
def test_torchvision_entries_match_torchvision_weights(name):
    asset = get_asset(name)
    weights = _weights_enum(asset)
    (f,) = asset.files
    assert f.name == os.path.basename(weights.url)
    assert asset.meta["num_params"] == weights.meta["num_params"]
    assert len(weights.meta["categories"]) == asset.meta["num_classes"]
    # torchvision names files by a sha256 prefix; the entry must accept exactly that digest
    prefix = f.name.rsplit("-", 1)[1].split(".")[0]
    assert (f.sha256 or "").startswith(prefix) or f"sha256-prefix:{prefix}" in f.also_accept
    url_src = next(s for s in asset.sources if isinstance(s, UrlSource))
    assert url_src.url_for(f) == weights.url


def test_mobilenet_builder_parameter_count_matches_meta():
    model = torchvision.models.mobilenet_v2()
    assert sum(p.numel() for p in model.parameters()) == get_asset("mobilenet_v2").meta["num_params"]


def test_seed_torch_hub_makes_torchvision_weights_api_work_offline(isolated_torch_hub, fresh_cache):
    assert not (isolated_torch_hub / MOBILENET_FILE).exists()
    hub = seed_torch_hub("mobilenet_v2")
    assert hub == isolated_torch_hub
    assert verify_file(hub / MOBILENET_FILE, get_asset("mobilenet_v2").files[0])
    assert not [p for p in hub.iterdir() if p.name.endswith(".tmp")]

    model = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")  # a download would hit the socket block
    shipped = torch.load(_package_copy("mobilenet_v2"), map_location="cpu", weights_only=True)
    loaded = model.state_dict()
    assert set(loaded) == set(shipped)
    for k, v in shipped.items():
        assert torch.equal(loaded[k], v), k
    # seeding again is a no-op that keeps the verified copy
    mtime = (hub / MOBILENET_FILE).stat().st_mtime_ns
    seed_torch_hub("mobilenet_v2")
    assert (hub / MOBILENET_FILE).stat().st_mtime_ns == mtime


def test_online_only_weights_load_from_torch_hub_cache_once_they_verify(isolated_torch_hub, fresh_cache,
                                                                          monkeypatch):
    torch.manual_seed(0)
    random_state = torchvision.models.resnet18().state_dict()
    isolated_torch_hub.mkdir(parents=True)
    ckpt = isolated_torch_hub / "resnet18-f37072fd.pth"
    torch.save(random_state, ckpt)

    # the file's digest does not match torchvision's published prefix: refused
    with pytest.raises(AssetError) as info:
        load_backbone("resnet18", image_size=32)
    assert "corrupt" in str(info.value) and "resnet18-f37072fd.pth" in str(info.value)
    assert ckpt.exists()  # torch hub's cache is not ours to rename

    # trust exactly these bytes: the entry now names their sha256
    real = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    entry = REGISTRY["resnet18"]
    monkeypatch.setitem(REGISTRY, "resnet18",
                        dataclasses.replace(entry, files=(dataclasses.replace(entry.files[0], sha256=real),)))

    backbone = load_backbone("resnet18", image_size=32)
    model, dim, tf = backbone
    assert dim == 512 and backbone.name == "resnet18"
    assert not model.training
    state = model.state_dict()
    expected = {k: v for k, v in random_state.items() if not k.startswith("fc.")}
    assert set(state) == set(expected)
    for k, v in expected.items():
        assert torch.equal(state[k], v), k
    with torch.no_grad():
        out = model(tf(torch.rand(3, 1, 28, 28)))
    assert out.shape == (3, 512)


# ------------------------------------------------------------------ downloads (served from memory)

def _url_only(name: str):
    """The registry entry with only its download source left."""
    entry = REGISTRY[name]
    return dataclasses.replace(entry, sources=tuple(s for s in entry.sources if isinstance(s, UrlSource)))


class _FakeUrlopen:
    def __init__(self, payload: bytes | Exception):
        self.payload, self.urls = payload, []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        if isinstance(self.payload, Exception):
            raise self.payload
        return io.BytesIO(self.payload)


def test_download_of_good_bytes_lands_verified_in_cache(monkeypatch, fresh_cache):
    payload = _package_copy("mobilenet_v2").read_bytes()
    fake = _FakeUrlopen(payload)
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setitem(REGISTRY, "mobilenet_v2", _url_only("mobilenet_v2"))

    found = resolve("mobilenet_v2", download=True)

    assert fake.urls == [TORCHVISION_URL + MOBILENET_FILE]
    cached = cache_root() / "assets" / "mobilenet_v2" / MOBILENET_FILE
    assert found.path == cached and cached.read_bytes() == payload
    assert cached.stat().st_mode & 0o777 == 0o644, "a grading kernel (another user) must be able to read it"
    assert sorted(p.name for p in cached.parent.iterdir()) == [MOBILENET_FILE]
    # now served from the cache, without another download
    assert resolve("mobilenet_v2", download=True).path == cached
    assert len(fake.urls) == 1


def test_download_of_bad_bytes_is_discarded(monkeypatch, fresh_cache):
    fake = _FakeUrlopen(b"<html>captive portal</html>" * 50)
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setitem(REGISTRY, "mobilenet_v2", _url_only("mobilenet_v2"))

    with pytest.raises(AssetError) as info:
        resolve("mobilenet_v2", download=True)
    assert "hash mismatch" in str(info.value)
    assert len(fake.urls) == 1
    cache_dir = cache_root() / "assets" / "mobilenet_v2"
    assert [p.name for p in cache_dir.iterdir()] == []  # nothing kept, no .part leftovers


def test_failed_download_leaves_no_partial_file(monkeypatch, fresh_cache):
    class Broken(io.BytesIO):
        def read(self, *a):
            if self.tell() > 1000:
                raise ConnectionResetError("peer went away")
            return super().read(512)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Broken(b"x" * 100_000))
    monkeypatch.setitem(REGISTRY, "mobilenet_v2", _url_only("mobilenet_v2"))
    with pytest.raises(AssetError, match="peer went away"):
        resolve("mobilenet_v2", download=True)
    assert list((cache_root() / "assets" / "mobilenet_v2").iterdir()) == []


def test_offline_never_downloads(monkeypatch, fresh_cache):
    fake = _FakeUrlopen(RuntimeError("must not be called"))
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setitem(REGISTRY, "mobilenet_v2", _url_only("mobilenet_v2"))
    with pytest.raises(AssetError, match="skipped \\(offline\\)"):
        resolve("mobilenet_v2")  # download=None: decided by is_online(), False here
    assert fake.urls == []


def test_system_source_missing_names_the_install_command(tmp_path, monkeypatch, fresh_cache):
    entry = REGISTRY["fashion-mnist"]
    sources = tuple(dataclasses.replace(s, path=str(tmp_path / "nowhere")) if isinstance(s, SystemSource) else s
                    for s in entry.sources)
    monkeypatch.setitem(REGISTRY, "fashion-mnist", dataclasses.replace(entry, sources=sources))
    with pytest.raises(AssetError) as info:
        resolve("fashion-mnist")
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "not present" in str(info.value)
