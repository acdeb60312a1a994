"""Shared test setup: no network, the quick profile, and caches that are not the user's.

Every test runs with
- non-loopback network blocked (``socket.socket.connect``/``connect_ex`` and
  ``socket.create_connection`` raise ``OSError("network blocked in tests")``);
- ``TLCOURSE_PROFILE=quick``, ``TLCOURSE_OFFLINE=1``, ``HF_HUB_OFFLINE=1``,
  ``TRANSFORMERS_OFFLINE=1``, ``MPLBACKEND=Agg``;
- ``TLCOURSE_CACHE`` and ``TORCH_HOME`` in a session temporary directory, so
  nothing is read from or written to ``~/.cache`` (``load_backbone`` seeds
  torch hub's cache as a side effect);
- ``tlcourse.assets.resolve._online`` reset, so no test inherits another's
  online/offline verdict.
"""
from __future__ import annotations

import importlib
import ipaddress
import os
import pathlib
import socket

import pytest

# matplotlib picks its backend on the first pyplot import, which can happen at
# collection time, before any fixture runs.
os.environ.setdefault("MPLBACKEND", "Agg")

BLOCKED = "network blocked in tests"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback_host(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(family, address) -> bool:
    if getattr(socket, "AF_UNIX", None) is not None and family == socket.AF_UNIX:
        return True
    if isinstance(address, (str, bytes)):  # a unix socket path
        return True
    if isinstance(address, tuple) and address:
        return _is_loopback_host(address[0])
    return False


@pytest.fixture(scope="session", autouse=True)
def _offline_session(tmp_path_factory):
    """Block the network and pin the environment for the whole session."""
    import torch

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(self, address):
        if not _allowed(self.family, address):
            raise OSError(f"{BLOCKED}: connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _allowed(self.family, address):
            raise OSError(f"{BLOCKED}: connect_ex to {address!r}")
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        # checked before any DNS lookup, so a blocked call fails at once
        if not (isinstance(address, tuple) and address and _is_loopback_host(address[0])):
            raise OSError(f"{BLOCKED}: create_connection to {address!r}")
        return real_create_connection(address, *args, **kwargs)

    root = tmp_path_factory.mktemp("tlcourse-session")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "create_connection", create_connection)
        for key, value in {"TLCOURSE_PROFILE": "quick", "TLCOURSE_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                           "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
                           "TLCOURSE_CACHE": str(root / "cache"), "TORCH_HOME": str(root / "torch")}.items():
            mp.setenv(key, value)
        mp.delenv("TLCOURSE_DEVICE", raising=False)
        torch.set_num_threads(1)  # other work shares the cores
        try:
            yield root
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _reset_online_state(monkeypatch):
    # ``tlcourse.assets.resolve`` is shadowed by the function of that name in
    # tlcourse.assets' namespace, so reach the module through sys.modules.
    mod = importlib.import_module("tlcourse.assets.resolve")
    monkeypatch.setattr(mod, "_online", None)


@pytest.fixture
def isolated_torch_hub(tmp_path, monkeypatch) -> pathlib.Path:
    """A fresh, empty TORCH_HOME; returns torch hub's checkpoint directory in it."""
    import torch.hub

    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # an earlier set_dir() would win
    checkpoints = pathlib.Path(torch.hub.get_dir()) / "checkpoints"
    assert home in checkpoints.parents
    return checkpoints


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> pathlib.Path:
    """An empty TLCOURSE_CACHE for one test (assets, features)."""
    root = tmp_path / "tlcourse_cache"
    monkeypatch.setenv("TLCOURSE_CACHE", str(root))
    return root
