"""Runs inside a grading kernel, before any student code: snapshot, then restore before each test cell.

The grader sends this file's source to a fresh kernel (it imports only the
standard library and IPython, so it costs nothing) and calls
``install(...)``. Before every test cell it calls ``restore(nonce)``,
which undoes the usual ways a submission games tests:

- patched functions, classes or objects of the modules the notebook's own
  import cells load (``tlcourse`` checks, numpy, torch, math ...), including
  replaced ``sys.modules`` entries and fake modules planted under those names;
- patched or shadowed builtins (``AssertionError = ...``, ``builtins.isinstance``,
  a user-namespace ``__builtins__``);
- error swallowing: IPython ``set_custom_exc``, input/AST transformers, event
  callbacks, ``sys.excepthook``/``displayhook``/``stdout``, trace functions, and
  methods of the shell or kernel replaced on the instance or the class;
- names the notebook imports (``np``, ``q1`` ...) rebound to fakes;
- the grader's ``TLCOURSE_STUDENT`` (set, changed or deleted in ``os.environ``,
  or ``os.environ`` rebound), so a hidden test draws the submission's own
  variant (tlcourse/variants.py), not one the notebook chose.

It answers with sha256(nonce), so a submission that stops grader code from
running is detected. Student code runs in this same process, so a submission
written against this file can defeat it; docs/GRADING.md says so.
"""
import builtins
import hashlib
import sys
import types

_MISSING = object()
# Builtins a test relies on; a user-namespace binding of one of these is removed before a test.
_GUARDED_BUILTINS = ("isinstance", "issubclass", "len", "abs", "all", "any", "bool", "float", "int", "round",
                     "callable", "hasattr", "getattr", "type", "print", "set", "repr", "str", "sum", "min", "max")
_ALWAYS_PROTECTED = ("numpy", "torch", "math", "operator", "functools", "IPython", "ipykernel", "jupyter_client",
                     "zmq", "traitlets", "codeop", "ast", "hashlib", "tlcourse", "threading")
# A thread the notebook's own code left running while a test runs could re-patch what restore() just put back,
# so it trips the wire (the test is not run; a person looks). Threads libraries start for themselves (tqdm's
# monitor, a data loader's) run library code and are left alone.
_STUDENT_MODULES = ("__main__", "builtins", None, "")
_GRADER_ENV = ("TLCOURSE_STUDENT",)  # set by the grader per submission; put back before every test


def _is_member(value) -> bool:
    return callable(value) or isinstance(value, (types.ModuleType, staticmethod, classmethod, property))


def _block_network() -> None:
    """Refuse every non-Unix socket connection (used where no network namespace is available)."""
    import socket

    def refuse(self, address, *args, **kwargs):
        if self.family == getattr(socket, "AF_UNIX", None):
            return _real_connect(self, address)
        raise OSError("network access is disabled while grading")

    _real_connect = socket.socket.connect
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError("network access is disabled while grading"))


class _Snapshot:
    """Members (functions, classes, modules, descriptors) of one object at install time."""

    __slots__ = ("obj", "members", "keys", "is_module")

    def __init__(self, obj):
        self.obj = obj
        d = vars(obj)
        self.keys = frozenset(d)
        self.members = {k: v for k, v in d.items() if _is_member(v)}
        self.is_module = isinstance(obj, types.ModuleType)

    def restore(self, problems: list) -> None:
        obj, d = self.obj, vars(self.obj)
        for key, value in self.members.items():
            if d.get(key, _MISSING) is not value:
                try:
                    setattr(obj, key, value)
                except Exception as exc:  # a read-only type cannot have been patched in the first place
                    problems.append(f"{getattr(obj, '__name__', type(obj).__name__)}.{key}: {exc}")
        for key in [k for k in d if k not in self.keys]:
            shadows = key == "__getattr__" if self.is_module else any(
                key in vars(klass) for klass in (type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__[1:]))
            if shadows:
                try:
                    delattr(obj, key)
                except Exception as exc:
                    problems.append(f"{key}: {exc}")


class Guard:
    def __init__(self, trusted_imports: list, block_network: bool):
        import IPython

        self.shell = IPython.get_ipython()
        if block_network:
            _block_network()
        namespace: dict = {}
        for statement in trusted_imports:
            try:
                exec(compile(statement, "<tlcourse-trusted-imports>", "exec"), namespace)
            except Exception:  # the notebook's own cell will report it
                pass
        namespace.pop("__builtins__", None)
        self.bindings = namespace
        roots = {name.split(".")[0] for name in sys.modules if name.split(".")[0] in _ALWAYS_PROTECTED}
        roots |= {getattr(v, "__name__", "").split(".")[0] for v in namespace.values() if isinstance(v, types.ModuleType)}
        roots |= {str(getattr(v, "__module__", "") or "").split(".")[0] for v in namespace.values()}
        roots |= {type(v).__module__.split(".")[0] for v in namespace.values()}
        roots.discard("")
        roots.discard("builtins")
        self.roots = tuple(sorted(roots))
        self.modules = {n: m for n, m in list(sys.modules.items())
                        if m is not None and n.split(".")[0] in self.roots}
        self.package_dirs = {}
        for root in self.roots:
            mod = sys.modules.get(root)
            paths = list(getattr(mod, "__path__", []) or [])
            self.package_dirs[root] = tuple(str(p) for p in paths)
        seen: set = set()
        self.snapshots: list = []

        def add(obj):
            if id(obj) not in seen and hasattr(obj, "__dict__"):
                seen.add(id(obj))
                self.snapshots.append(_Snapshot(obj))

        for mod in self.modules.values():
            add(mod)
            for value in list(vars(mod).values()):
                if isinstance(value, type) and str(value.__module__).split(".")[0] in self.roots:
                    add(value)
                elif (not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))
                      and type(value).__module__.split(".")[0] == "tlcourse"):
                    add(value)  # objects such as q1 = Question(...)
        for value in namespace.values():
            if not isinstance(value, (types.ModuleType, type)):
                add(value)
        kernel = getattr(self.shell, "kernel", None)
        machinery = (self.shell, kernel, getattr(kernel, "session", None), getattr(self.shell, "compile", None),
                     getattr(self.shell, "displayhook", None), getattr(self.shell, "display_pub", None),
                     getattr(self.shell, "events", None))
        for obj in machinery:
            if obj is None:
                continue
            add(obj)
            for klass in type(obj).__mro__[:-1]:
                add(klass)
        self.builtins = dict(vars(builtins))
        self.sys_hooks = {name: getattr(sys, name) for name in ("excepthook", "displayhook", "stdout", "stderr")}
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        shell = self.shell
        self.shell_state = {
            "custom_exceptions": shell.custom_exceptions,
            "CustomTB": shell.CustomTB,
            "input_transformers_cleanup": list(shell.input_transformers_cleanup),
            "input_transformers_post": list(shell.input_transformers_post),
            "ast_transformers": list(shell.ast_transformers),
        }
        self.events = {k: list(v) for k, v in shell.events.callbacks.items()}
        kernel = getattr(shell, "kernel", None)
        self.shell_handlers = dict(getattr(kernel, "shell_handlers", {}) or {})
        self.sha256 = hashlib.sha256
        import os

        self.os, self.environ = os, os.environ
        self.grader_env = {name: os.environ.get(name) for name in _GRADER_ENV}
        add(os.environ)  # and its class: their methods are restored with the other snapshots
        add(type(os.environ))
        self.frames = sys._current_frames
        self.threads_at_start = set(self.frames())

    def _restore_modules(self, problems: list) -> None:
        for name in list(sys.modules):
            root = name.split(".")[0]
            if root not in self.roots:
                continue
            mod = sys.modules[name]
            if name in self.modules:
                if mod is not self.modules[name]:
                    sys.modules[name] = self.modules[name]
                continue
            origin = str(getattr(mod, "__file__", "") or "")
            genuine = isinstance(mod, types.ModuleType) and any(origin.startswith(d) for d in self.package_dirs.get(root, ()))
            if not genuine:
                del sys.modules[name]  # planted: a real import will load the real module
        for name, mod in self.modules.items():
            sys.modules.setdefault(name, mod)

    def restore(self, nonce: str) -> None:
        b = builtins.__dict__  # builtins first, without calling any: they may be patched
        for key, value in self.builtins.items():
            if b.get(key, _MISSING) is not value:
                b[key] = value
        problems: list = []
        sys.settrace(None)
        sys.setprofile(None)
        for name, value in self.sys_hooks.items():
            setattr(sys, name, value)
        sys.meta_path[:] = self.meta_path
        sys.path_hooks[:] = self.path_hooks
        self._restore_modules(problems)
        for snap in self.snapshots:
            snap.restore(problems)
        shell = self.shell
        for key, value in self.shell_state.items():
            if key.startswith("input_") or key == "ast_transformers":
                getattr(shell, key)[:] = value
            else:
                setattr(shell, key, value)
        for key, callbacks in self.events.items():
            shell.events.callbacks[key][:] = callbacks
        kernel = getattr(shell, "kernel", None)
        if kernel is not None and self.shell_handlers:
            kernel.shell_handlers.clear()
            kernel.shell_handlers.update(self.shell_handlers)
        self._restore_environ()
        ns = shell.user_ns
        ns["__builtins__"] = builtins
        ns.update(self.bindings)
        for name in list(ns):
            value = self.builtins.get(name, _MISSING)
            if value is _MISSING or ns[name] is value:
                continue
            if name in _GUARDED_BUILTINS or (isinstance(value, type) and issubclass(value, BaseException)):
                del ns[name]
        extra = self._extra_threads()
        if extra:  # one could undo this restore before the test runs: the test is not run, and a person looks
            message = (f"{len(extra)} thread(s) started by the notebook alive when a test was to run "
                       f"({', '.join(map(str, extra[:3]))})")
            self.builtins["print"]("tlcourse-guard-tripwire: " + message)
            problems.append(message)
        if problems:
            self.builtins["print"]("tlcourse-guard-problems: " + "; ".join(problems[:5]))
        else:
            self.builtins["print"](self.sha256(nonce.encode()).hexdigest())

    def _restore_environ(self) -> None:
        self.os.environ = self.environ  # its methods were restored with the snapshots above
        for name, value in self.grader_env.items():
            if value is None:
                self.environ.pop(name, None)
            else:
                self.environ[name] = value

    def _extra_threads(self) -> list:
        import threading

        extra = []
        for ident in set(self.frames()) - self.threads_at_start:
            thread = threading._active.get(ident)
            kind = type(thread)
            if kind.__module__ == "threading":  # a plain Thread or Timer: whose code does it run?
                code = getattr(thread, "_target", None) or getattr(thread, "function", None)
                origin = getattr(getattr(code, "func", code), "__module__", None)
            else:
                origin = kind.__module__
            if thread is None or origin in _STUDENT_MODULES:
                extra.append(getattr(thread, "name", ident))
        return extra


def install(trusted_imports: list, block_network: bool) -> None:
    builtins.__tlcourse_guard__ = Guard(trusted_imports, block_network)
