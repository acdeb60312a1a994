"""Checks for notebook 10, speech.

q1 ``pool_frames(frames, mask)``: the masked mean of frame embeddings over time, one vector per clip.
q2 ``prototype_scores(support, support_labels, queries, n_classes)``: cosine similarity of each query
   to each class's mean support vector.

Each check runs the student's function on small fixed problems (drawn below from seeded NumPy
generators) and compares the result with expected outputs stored in ``speech_expected.json``
(written once by tests/speech_reference.py, which is not installed): the right answer and the
output of each typical mistake, so that a mistake is recognised and named. A property is checked
too: what sits in the padded frames must not change the pooled vector.
"""
from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import torch

from ._core import NotAttempted, Question, QuestionSet, Wrong, keep_rng

EXPECTED_PATH = pathlib.Path(__file__).with_name("speech_expected.json")
TOL = 1e-4


@functools.lru_cache(maxsize=None)
def expected() -> dict:
    return json.loads(EXPECTED_PATH.read_text())


def _as_tensor(out, name: str) -> torch.Tensor:
    if out is None:
        raise Wrong(f"`{name}` returned None: return the result (a tensor).")
    try:
        t = torch.as_tensor(out.detach() if isinstance(out, torch.Tensor) else np.asarray(out))
    except Exception:
        raise Wrong(f"`{name}` returned a {type(out).__name__}; return a torch tensor.") from None
    if not (t.is_floating_point()):
        raise Wrong(f"`{name}` returned a tensor of dtype {t.dtype}; it should hold floating-point numbers "
                    "(did you return predicted labels instead of scores?).")
    return t.double().cpu()


def _match(t: torch.Tensor, values) -> bool:
    ref = torch.tensor(values, dtype=torch.float64)
    return t.shape == ref.shape and bool(torch.allclose(t, ref, atol=TOL, rtol=TOL))

# ---------------------------------------------------------------- q1: pooling over time

POOL_PROBLEMS = ("ragged", "square")


def pool_problem(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames (B, T, D), mask (B, T) bool). Padded frames hold large values, as zero-padded audio does."""
    if name == "ragged":
        rng, lengths, T, D = np.random.default_rng(10), (6, 3, 1, 4), 6, 5
    elif name == "square":
        rng, lengths, T, D = np.random.default_rng(11), (2, 3, 1), 3, 3
    else:
        raise KeyError(name)
    B = len(lengths)
    frames = rng.normal(size=(B, T, D))
    mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    frames[~mask] = 20.0 + rng.normal(size=(int((~mask).sum()), D))
    return torch.tensor(frames, dtype=torch.float32), torch.tensor(mask)


_POOL_MISTAKES = {
    "no_mask": "you averaged every frame, padded ones included. The clips have different lengths and were padded "
               "to the longest; the padded frames are not speech (here they hold large values, as the embeddings "
               "of zero-padded audio do) and must not count: average only the frames where the mask is True.",
    "divide_by_T": "you left the padded frames out of the sum but divided by the padded length T. Divide each clip's "
                   "sum by its own number of real frames (the number of True entries in its row of the mask).",
    "masked_sum": "you summed the real frames but did not divide: a longer clip would get a larger vector. "
                  "Divide by each clip's number of real frames, so clips of every length are on one scale.",
    "batch_axis": "you averaged over the batch axis (axis 0): that mixes different clips. Average over time, "
                  "axis 1 of (B, T, D), to get one D-dimensional vector per clip.",
    "feature_axis": "you averaged over the feature axis (the last one): that gives one number per frame. "
                    "Average over time, axis 1 of (B, T, D), to get one D-dimensional vector per clip.",
    "masked_max": "this is max pooling. The exercise asks for the masked *mean*; max pooling is the notebook's "
                  "comparison, computed by the library.",
}


def _eval_pool(pool_frames) -> None:
    for name in POOL_PROBLEMS:
        frames, mask = pool_problem(name)
        f_in, m_in = frames.clone(), mask.clone()
        out = _as_tensor(pool_frames(f_in, m_in), "pool_frames")
        if not (torch.equal(f_in, frames) and torch.equal(m_in, mask)):
            raise Wrong("`pool_frames` changed its inputs in place (e.g. zeroing padded frames with `*=` or "
                        "`masked_fill_`); compute a new tensor instead.")
        B, T, D = frames.shape
        want = expected()["pool"][name]
        if _match(out, want["correct"]):
            continue
        for variant, message in _POOL_MISTAKES.items():
            if _match(out, want[variant]):
                raise Wrong(message)
        if out.shape != (B, D):
            hint = (" That is (B, T): you averaged over the features, not over time." if out.shape == (B, T) else
                    " That is (T, D): you averaged over the batch, not over time." if out.shape == (T, D) else "")
            raise Wrong(f"the output has shape {tuple(out.shape)}; expected (B, D) = ({B}, {D}), one vector per "
                        f"clip.{hint}")
        junk = frames.clone()
        junk[~mask] = -junk[~mask] * 3
        if not torch.allclose(_as_tensor(pool_frames(junk, mask.clone()), "pool_frames"), out, atol=TOL):
            raise Wrong("changing only the padded frames changed your pooled vectors: padded frames still leak "
                        "into the result. Use the mask to leave them out of both the sum and the count.")
        raise Wrong(f"on a fixed problem (B={B}, T={T}, D={D}, real lengths {mask.sum(1).tolist()}) your vectors "
                    "differ from the masked mean. For each clip: sum the frames where the mask is True, divide by "
                    "how many there are.")


# ---------------------------------------------------------------- q2: prototypes

PROTO_PROBLEMS = ("unequal", "shuffled")


def proto_problem(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(support (N, D), support_labels (N,), queries (Q, D), n_classes), classes of unequal size and scale."""
    if name == "unequal":
        rng, counts, D, Q = np.random.default_rng(20), (2, 5, 1), 6, 4
    elif name == "shuffled":
        rng, counts, D, Q = np.random.default_rng(21), (3, 1, 4, 2), 5, 6
    else:
        raise KeyError(name)
    C = len(counts)
    centres = rng.normal(size=(C, D)) * rng.uniform(0.5, 4.0, size=(C, 1)) + 0.5
    labels = np.repeat(np.arange(C), counts)
    support = centres[labels] + rng.normal(size=(len(labels), D)) * rng.uniform(0.2, 3.0, size=(len(labels), 1))
    order = rng.permutation(len(labels))
    queries = rng.normal(size=(Q, D)) * rng.uniform(0.3, 5.0, size=(Q, 1)) + 0.5
    return (torch.tensor(support[order], dtype=torch.float32), torch.tensor(labels[order]),
            torch.tensor(queries, dtype=torch.float32), C)


_PROTO_MISTAKES = {
    "dot": "these are dot products, not cosine similarities: neither the queries nor the prototypes were "
           "normalised, so a long vector wins whatever its direction. Divide each by its length (L2 norm).",
    "query_norm_only": "you normalised the queries but not the prototypes: a prototype with a large norm then wins "
                       "too often. Normalise both to unit length before the dot product.",
    "proto_norm_only": "you normalised the prototypes but not the queries: each row is scaled by its query's length, "
                       "so scores are not comparable between queries. Normalise both to unit length.",
    "neg_distance": "these are (negative) Euclidean distances to the prototypes; the exercise asks for cosine "
                    "similarity: the dot product of the unit-length query and unit-length prototype.",
    "one_minus": "this is the cosine *distance* (1 − cosine), so the nearest prototype has the smallest score and "
                 "argmax picks the farthest. Return the similarity itself.",
    "global_mean": "every prototype is the same vector: you averaged the whole support set (over the wrong axis or "
                   "without selecting by label). Average only the support vectors whose label is that class.",
}


def _eval_proto(prototype_scores) -> None:
    for name in PROTO_PROBLEMS:
        support, labels, queries, C = proto_problem(name)
        args = (support.clone(), labels.clone(), queries.clone(), C)
        out = _as_tensor(prototype_scores(*args), "prototype_scores")
        if not (torch.equal(args[0], support) and torch.equal(args[2], queries)):
            raise Wrong("`prototype_scores` changed its inputs in place (e.g. normalising with `/=`); "
                        "compute new tensors instead.")
        Q, N = len(queries), len(support)
        if out.shape != (Q, C):
            hint = (" That is (n_classes, Q): transpose, one row per query." if out.shape == (C, Q) else
                    " That is one score per support example: compare each query with the class *means*."
                    if out.shape == (Q, N) else "")
            raise Wrong(f"the scores have shape {tuple(out.shape)}; expected (Q, n_classes) = ({Q}, {C}).{hint}")
        want = expected()["proto"][name]
        if _match(out, want["correct"]) or _match(out, want["normalise_first"]):
            continue
        for variant, message in _PROTO_MISTAKES.items():
            if _match(out, want[variant]):
                raise Wrong(message)
        if out.abs().max() > 1 + 1e-4:
            raise Wrong("some scores are larger than 1 in absolute value, so they are not cosine similarities: "
                        "normalise the queries and the prototypes to unit length.")
        raise Wrong(f"on a fixed problem ({N} support vectors in {C} classes of sizes "
                    f"{torch.bincount(labels, minlength=C).tolist()}, labels not sorted) your scores differ from "
                    "the cosine similarity to each class's mean support vector. Check how you select each class's "
                    "vectors (by label, not by position) and that both sides are unit length.")


# ---------------------------------------------------------------- questions

q1 = Question(
    "q1", "pooling frames into a clip vector", ["pool_frames"], keep_rng(_eval_pool),
    hints=["The embedding model gives one vector per 80 ms frame, but a classifier wants one vector per clip. "
           "Averaging over time is the simplest summary; because clips were padded to a common length, only the "
           "real frames may take part.",
           "frames is (B, T, D) and mask is (B, T), True on real frames. Time is axis 1. Turning the mask into "
           "numbers (0 and 1) and giving it a trailing axis lets it multiply the frames.",
           "Zero out the padded frames by multiplying with the mask, sum over time, and divide each clip's sum by "
           "its own count of real frames (the mask summed over time, kept as a column so it divides every "
           "feature)."],
    why="one 96-d vector per clip, whatever its length, and padding cannot move it: a clip's vector no longer "
        "depends on which other clips it was batched with.")

q2 = Question(
    "q2", "the prototype classifier", ["prototype_scores"], keep_rng(_eval_proto),
    hints=["A prototype is one vector per class summarising its few labelled examples: their mean. A new clip "
           "is assigned to the class whose prototype points in the most similar direction (cosine similarity).",
           "Select each class's support vectors with a boolean mask on support_labels, average them over the "
           "example axis; stack the n_classes means. `torch.nn.functional.normalize` makes vectors unit length.",
           "Build the (n_classes, D) matrix of class means, scale its rows and the query rows to unit length, and "
           "return the matrix product of the queries with the transposed prototypes: (Q, n_classes)."],
    why="with no training at all, a few labelled clips per keyword give a classifier; its quality depends only on "
        "how well the pretrained embedding puts clips of one word close together and others apart.")

questions = QuestionSet(q1, q2)
check, hint, grade = questions.check, questions.hint, questions.grade

__all__ = ["q1", "q2", "questions", "check", "hint", "grade", "NotAttempted", "POOL_PROBLEMS", "pool_problem",
           "PROTO_PROBLEMS", "proto_problem"]
