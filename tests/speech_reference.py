"""Reference answers (and typical mistakes) for notebook 10's checks; writes tlcourse/checks/speech_expected.json.

Not installed with the package. Run `python tests/speech_reference.py` after changing a probe problem in
tlcourse/checks/speech.py; tests/test_checks_speech.py verifies the stored file matches this script.
"""
from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from tlcourse.checks import speech as checks


def pool(frames, mask):
    m = mask.float()[..., None]
    return (frames * m).sum(1) / m.sum(1)


def pool_mistakes(frames, mask):
    m = mask.float()
    return {
        "correct": pool(frames, mask),
        "no_mask": frames.mean(1),
        "divide_by_T": (frames * m[..., None]).sum(1) / frames.shape[1],
        "masked_sum": (frames * m[..., None]).sum(1),
        "batch_axis": (frames * m[..., None]).sum(0) / m.sum(0)[:, None],
        "feature_axis": frames.mean(2),
        "masked_max": frames.masked_fill(~mask[..., None], float("-inf")).amax(1),
    }


def prototypes(support, labels, n_classes):
    return torch.stack([support[labels == c].mean(0) for c in range(n_classes)])


def proto_scores(support, labels, queries, n_classes):
    return F.normalize(queries, dim=1) @ F.normalize(prototypes(support, labels, n_classes), dim=1).T


def proto_mistakes(support, labels, queries, n_classes):
    P = prototypes(support, labels, n_classes)
    correct = proto_scores(support, labels, queries, n_classes)
    return {
        "correct": correct,
        "normalise_first": proto_scores(F.normalize(support, dim=1), labels, queries, n_classes),
        "dot": queries @ P.T,
        "query_norm_only": F.normalize(queries, dim=1) @ P.T,
        "proto_norm_only": queries @ F.normalize(P, dim=1).T,
        "neg_distance": -torch.cdist(queries, P),
        "one_minus": 1 - correct,
        "global_mean": F.normalize(queries, dim=1) @ F.normalize(support.mean(0, keepdim=True), dim=1).T.expand(
            -1, n_classes),
    }


def build() -> dict:
    as_list = lambda d: {k: v.double().tolist() for k, v in d.items()}  # noqa: E731
    return {"pool": {n: as_list(pool_mistakes(*checks.pool_problem(n))) for n in checks.POOL_PROBLEMS},
            "proto": {n: as_list(proto_mistakes(*checks.proto_problem(n))) for n in checks.PROTO_PROBLEMS}}


if __name__ == "__main__":
    checks.EXPECTED_PATH.write_text(json.dumps(build(), indent=None) + "\n")
    print(f"wrote {checks.EXPECTED_PATH}")
