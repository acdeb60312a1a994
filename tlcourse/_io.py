"""Atomic writes: a crash or a full disk never leaves a half-written file in place."""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", perm: int | None = None, **kw):
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    The file is private to its owner (0600, from ``mkstemp``) unless ``perm`` says otherwise:
    gradebooks and grades stay private; shared caches pass ``perm=0o644`` so that a grading
    kernel, running as another user, can read what the instructor's run computed.

    >>> with atomic_open("grades.csv", "w", newline="") as fh:
    ...     fh.write("student,score\\n")
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kw) as fh:
            yield fh
            fh.flush()
            if perm is not None:
                os.fchmod(fh.fileno(), perm)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
