"""Library twins: tlcourse's own versions of a graded idea, which an answer must not call.

Later notebooks legitimately use a library version of an earlier exercise (the
CORAL loss, gradient reversal, masked mean pooling ...). A student could
answer the exercise by calling it, so each :class:`~._core.Question` names its
twins, and while the check runs the student's code a profile hook watches for
a call into any of them (:func:`watching`). A call means the answer delegates:
the check says so and the grade follows.

A twin is named by its dotted path (``"tlcourse.methods.adapt.CorrelationAlignmentLoss"``).
If that path no longer resolves because the function moved to another module,
it is found by its name in any tlcourse module; if it is gone, :func:`resolve`
raises, so a stale name fails the tests instead of silently watching nothing.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import pkgutil
import sys
import threading
import types
from typing import Iterable, Iterator

# Never searched for twins: the checks themselves, grading and the command line.
_SKIP = ("tlcourse.checks", "tlcourse.grading", "tlcourse.cli")


def _by_path(dotted: str):
    """The object at ``dotted`` (module path, then attributes), or None."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@functools.lru_cache(maxsize=None)
def _tlcourse_modules() -> tuple[types.ModuleType, ...]:
    import tlcourse

    mods = []
    for info in pkgutil.walk_packages(tlcourse.__path__, "tlcourse."):
        if info.name.startswith(_SKIP):
            continue
        try:
            mods.append(importlib.import_module(info.name))
        except Exception:  # an optional dependency missing: that module holds no twin here
            continue
    return tuple(mods)


def _by_name(dotted: str) -> list:
    """Objects named like ``dotted``'s last part (or ``Class.attr``) defined in any tlcourse module."""
    parts = dotted.split(".")
    found = []
    for mod in _tlcourse_modules():
        for n in (2, 1):  # "Class.method" first, then the bare name
            if len(parts) <= n:
                continue
            obj = mod
            try:
                for attr in parts[-n:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                continue
            home = getattr(obj, "__module__", None) or getattr(inspect.unwrap(obj), "__module__", "")
            if home == mod.__name__ and all(obj is not f for f in found):
                found.append(obj)
            break
    return found


@functools.lru_cache(maxsize=None)
def resolve(dotted: str) -> tuple:
    """The library objects a twin name stands for; LookupError if it names nothing any more."""
    obj = _by_path(dotted)
    if obj is not None:
        return (obj,)
    found = _by_name(dotted)
    if not found:
        raise LookupError(f"the library twin {dotted!r} named by a check no longer exists in tlcourse: update the "
                          "question's `twins` in tlcourse/checks/ to the function's new name")
    return tuple(found)


def _codes(obj) -> Iterator[types.CodeType]:
    """Code objects that run when ``obj`` (a function, method or class) is called or used."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, type):
        for member in vars(obj).values():
            member = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if isinstance(member, property):
                member = member.fget
            if isinstance(member, types.FunctionType):
                yield inspect.unwrap(member).__code__
    elif isinstance(obj, types.MethodType):
        yield from _codes(obj.__func__)
    elif isinstance(obj, types.FunctionType):
        yield obj.__code__


def code_objects(names: Iterable[str]) -> dict[types.CodeType, str]:
    """Every code object of the named twins, mapped to the name to show the student."""
    out: dict[types.CodeType, str] = {}
    for name in names:
        for obj in resolve(name):
            label = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', name.rsplit('.', 1)[-1])}"
            for code in _codes(obj):
                out.setdefault(code, label)
    return out


class Watch:
    """What happened while watching: the twins called, and whether the answer removed the hook."""

    def __init__(self):
        self.called: list[str] = []
        self.tampered = False


@contextlib.contextmanager
def watching(names: Iterable[str]) -> Iterator[Watch]:
    """Within the block, record each twin that gets called (in this thread or one started in the block)."""
    codes = code_objects(names)
    watch = Watch()
    if not codes:
        yield watch
        return
    previous, previous_threads = sys.getprofile(), threading.getprofile()

    def hook(frame, event, arg):
        if event == "call":
            label = codes.get(frame.f_code)
            if label is not None and label not in watch.called:
                watch.called.append(label)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield watch
    finally:
        watch.tampered = sys.getprofile() is not hook
        sys.setprofile(previous)
        threading.setprofile(previous_threads)
