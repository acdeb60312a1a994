"""Instant feedback for exercises, after Kaggle's learntools.

A :class:`Question` evaluates a student's answer on fixed inputs and says
one of three things: *not attempted*, *not quite* with a message that
teaches, or *correct* with a line on why it matters. ``hint()`` gives
tiered hints in words, never code. Hidden nbgrader tests call
``grade()``, which runs the same evaluation and raises ``AssertionError``
with the same message, so feedback and grade can never disagree.

A question may name its library *twins* (tlcourse's own version of the
idea it grades, kept for later notebooks): an answer that calls one is
marked wrong whatever it returns (see :mod:`._twins`).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from . import _expected, _twins


class NotAttempted(Exception):
    """The answer is missing or still raises NotImplementedError."""


class Wrong(Exception):
    """A wrong answer; the message says what is wrong and why it matters."""


@dataclass
class Verdict:
    status: str  # "correct" | "wrong" | "not_attempted"
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        label = {"correct": "Correct", "wrong": "Not quite", "not_attempted": "Not attempted"}[self.status]
        return f"{label}: {self.message}"

    def _repr_markdown_(self) -> str:
        colour = {"correct": "#2e7d32", "wrong": "#c62828", "not_attempted": "#6d6d6d"}[self.status]
        head = str(self).split(":", 1)[0]
        return f"<span style='color:{colour}; font-weight:bold'>{head}:</span> {self.message}"


_MISSING = object()


@dataclass
class Question:
    """One exercise. ``evaluate(*answers)`` raises :class:`Wrong` or returns None."""

    qid: str
    title: str
    answer_names: Sequence[str]
    evaluate: Callable[..., Any]
    hints: Sequence[str]
    why: str
    twins: Sequence[str] = ()  # dotted names of the library's versions of this idea
    _hints_shown: int = field(default=0, repr=False)

    def _lookup(self, answers: tuple, depth: int = 3) -> tuple:
        if answers:
            return answers
        frame = inspect.currentframe()
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
        scope: dict = {}
        try:
            from IPython import get_ipython
            ip = get_ipython()
            if ip is not None:
                scope.update(ip.user_ns)
        except ImportError:
            pass
        if frame is not None:
            scope.update(frame.f_globals)
            scope.update(frame.f_locals)
        return tuple(scope.get(name, _MISSING) for name in self.answer_names)

    def verdict(self, *answers) -> Verdict:
        answers = self._lookup(answers, depth=2)
        missing = [n for n, a in zip(self.answer_names, answers) if a is _MISSING or a is None]
        if missing:
            return Verdict("not_attempted", f"define {', '.join(f'`{m}`' for m in missing)} and run its cell first.")
        with _twins.watching(self.twins) as watch:
            verdict = self._judge(answers)
        if watch.tampered:
            return Verdict("wrong", "your code removed the profile hook (`sys.setprofile`) that this check uses to "
                                    "see which library functions an answer calls; an answer must leave it alone.")
        if watch.called and verdict.status != "not_attempted":
            names = " / ".join(f"`{n}`" for n in self.answer_names)
            return Verdict("wrong", f"your {names} calls tlcourse's own `{watch.called[0]}`, the library's version "
                                    "of this exercise. Write it yourself: the library keeps it for later notebooks, "
                                    "and an answer that calls it earns no points here.")
        return verdict

    def _judge(self, answers: tuple) -> Verdict:
        try:
            self.evaluate(*answers)
        except NotAttempted as exc:
            return Verdict("not_attempted", str(exc) or "replace `raise NotImplementedError()` with your code.")
        except NotImplementedError:
            return Verdict("not_attempted", "replace `raise NotImplementedError()` with your code.")
        except Wrong as exc:
            return Verdict("wrong", str(exc))
        except _expected.StaleExpected:
            raise
        except Exception as exc:  # their code crashed: say where, in their terms
            return Verdict("wrong", f"your code raised {type(exc).__name__}: {exc}")
        return Verdict("correct", self.why)

    def check(self, *answers) -> None:
        """Show feedback on the answer (looked up by name in the notebook if not given).

        Returns None so that a bare ``q1.check()`` cell shows the feedback once;
        use :meth:`verdict` to get it as a value.
        """
        _show(self.verdict(*self._lookup(answers, depth=2)))

    def grade(self, *answers) -> None:
        """For hidden tests: pass silently or raise AssertionError with the feedback."""
        v = self.verdict(*self._lookup(answers, depth=2))
        assert v.correct, str(v)

    def hint(self, level: int | None = None) -> str:
        """The next hint (or hint ``level``, 1-based); later hints say more."""
        if level is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            level = self._hints_shown
        level = max(1, min(level, len(self.hints)))
        text = f"Hint {level}/{len(self.hints)} for {self.qid} ({self.title}): {self.hints[level - 1]}"
        print(text)
        return text


def _show(v: Verdict) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
        if get_ipython() is not None:
            display(Markdown(v._repr_markdown_()))
            return
    except ImportError:
        pass
    print(v)


class QuestionSet:
    """The questions of one notebook: ``qs.q1.check()`` or ``qs.check("q1")``."""

    def __init__(self, *questions: Question):
        self._by_id = {q.qid: q for q in questions}
        for q in questions:
            setattr(self, q.qid, q)

    def __getitem__(self, qid: str) -> Question:
        try:
            return self._by_id[qid]
        except KeyError:
            raise KeyError(f"no question {qid!r}; this notebook has {', '.join(self._by_id)}") from None

    def check(self, qid: str, *answers) -> None:
        q = self[qid]
        _show(q.verdict(*q._lookup(answers, depth=2)))

    def hint(self, qid: str, level: int | None = None) -> str:
        return self[qid].hint(level)

    def grade(self, qid: str, *answers) -> None:
        q = self[qid]
        v = q.verdict(*q._lookup(answers, depth=2))
        assert v.correct, str(v)


def keep_rng(evaluate: Callable) -> Callable:
    """Run a check without touching the notebook's global torch RNG (module constructors draw from it)."""
    @functools.wraps(evaluate)
    def wrapped(*answers):
        import torch
        with torch.random.fork_rng(devices=[]):
            return evaluate(*answers)
    return wrapped


def require_scalar_tensor(out, name: str, why: str, scalar_is: str, differentiable: str | None = None):
    """``out`` as a 0-d tensor if it is a one-element torch tensor, else :class:`Wrong` naming what came back.

    ``why`` says what the caller does with it ("it can be backpropagated"), ``scalar_is``
    what the one number should be ("the mean loss over all 2N anchors"). With ``differentiable``
    (what it must depend on, "the student's logits"), a value cut off from autograd is wrong too.
    """
    import torch
    if out is None:
        raise Wrong(f"`{name}` returned None: end it with `return` and the value ({scalar_is}).")
    if not isinstance(out, torch.Tensor):
        raise Wrong(f"`{name}` returned {type(out).__name__}; return a scalar torch tensor ({why}), "
                    "not a Python or NumPy number (no `.item()`).")
    if out.numel() != 1:
        raise Wrong(f"`{name}` returned a tensor of shape {tuple(out.shape)}; it must be one number (a scalar): {scalar_is}.")
    if differentiable and not out.requires_grad:
        raise Wrong(f"the value `{name}` returned does not depend on {differentiable} through autograd (was "
                    "something detached, or computed in NumPy?); build it with torch operations on the tensors "
                    "passed in, so that gradients flow back.")
    return out.reshape(())
