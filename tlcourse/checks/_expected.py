"""Stored expected outputs of the checks: numbers computed once, on the checks' fixed inputs.

The checks compare a student's answer with these numbers and with properties,
never with a reference implementation shipped in the package. The numbers live
in ``_expected/<topic>.json``, written by ``scripts/make_check_expected.py``
(which holds the reference code, outside the installed package). Each file also
stores a fingerprint of every probe input, so that if a new torch or
transformers version ever draws different probe inputs from the same seeds, the
check fails loudly instead of grading against numbers for other inputs.
"""
from __future__ import annotations

import functools
import json
import pathlib

import torch

DIR = pathlib.Path(__file__).resolve().parent / "_expected"


class StaleExpected(RuntimeError):
    """The stored values do not belong to these probe inputs: a course bug, not the student's."""


@functools.lru_cache(maxsize=None)
def load(topic: str) -> dict:
    path = DIR / f"{topic}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StaleExpected(f"{path} is missing: the checks' expected values ship with tlcourse; "
                            "reinstall it, or regenerate them with scripts/make_check_expected.py") from None


def value(topic: str, key: str) -> torch.Tensor:
    """A stored number or nested list of numbers, as a float64 tensor."""
    return torch.tensor(load(topic)["values"][key], dtype=torch.float64)


def fingerprint(*tensors: torch.Tensor) -> list[float]:
    """A few numbers that change when any input changes: sums, absolute sums and sizes."""
    out: list[float] = []
    for t in tensors:
        t = t.detach().double().cpu()
        out += [float(t.sum()), float(t.abs().sum()), float(t.numel())]
    return out


def verify(topic: str, name: str, *tensors: torch.Tensor) -> None:
    """Raise unless ``tensors`` are the probe inputs the stored values were computed on."""
    want = load(topic)["inputs"][name]
    got = fingerprint(*tensors)
    # per tensor (sum, abs sum, size): sums agree to float32 rounding, relative to the abs sum
    same = len(got) == len(want) and all(
        got[i + 2] == want[i + 2] and all(abs(got[j] - want[j]) <= 1e-5 * max(1.0, want[i + 1]) for j in (i, i + 1))
        for i in range(0, len(want), 3))
    if not same:
        raise StaleExpected(f"the probe input {name!r} of tlcourse.checks.{topic} is not the one its stored expected "
                            "values were computed on (a torch or transformers version drawing other numbers from "
                            "the same seed?). A maintainer regenerates them with scripts/make_check_expected.py.")
