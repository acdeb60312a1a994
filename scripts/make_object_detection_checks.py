"""Write tlcourse/checks/object_detection_expected.json: fixed inputs and the outputs the checks expect.

The references and the plausible mistakes live here, outside the installed package; the checks
only compare a learner's outputs with these stored numbers. Run once after changing a case:
    .venv/bin/python scripts/make_object_detection_checks.py
"""
from __future__ import annotations

import json
import pathlib

import torch
import torchvision

OUT = pathlib.Path(__file__).resolve().parents[1] / "tlcourse" / "checks" / "object_detection_expected.json"


def r(t: torch.Tensor, nd: int = 4) -> list:
    return torch.round(t.double() * 10 ** nd).div(10 ** nd).tolist()


# ---------------------------------------------------------------- q1 decode

def decode(raw, anchors, stride, mistake=None):
    b, _, h, w = raw.shape
    a, c = anchors.shape[0], raw.shape[1] // anchors.shape[0] - 5
    t = raw.view(b, a, 5 + c, h, w).permute(0, 1, 3, 4, 2)
    gy, gx = torch.meshgrid(torch.arange(h, dtype=raw.dtype), torch.arange(w, dtype=raw.dtype), indexing="ij")
    cx = (t[..., 0].sigmoid() + gx) * stride
    cy = (t[..., 1].sigmoid() + gy) * stride
    wh = t[..., 2:4].exp() * anchors.view(1, a, 1, 1, 2)
    box = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)
    out = torch.cat([box, t[..., 4:].sigmoid()], -1)
    return out.reshape(b, a * h * w, 5 + c)


def decode_case(seed, a, c, h, w, stride):
    g = torch.Generator().manual_seed(seed)
    raw = torch.round((torch.randn(1, a * (5 + c), h, w, generator=g) * 1.5) * 1e4) / 1e4
    anchors = torch.tensor([[10.0, 14.0], [37.0, 58.0], [81.0, 82.0]][:a])
    return dict(raw=r(raw), anchors=anchors.tolist(), stride=stride,
                expected=r(decode(raw.double(), anchors.double(), stride), 6))


# ---------------------------------------------------------------- q2 IoU

def iou(a, b, mistake=None):
    if mistake == "xywh":
        a = torch.cat([a[:, :2], a[:, :2] + a[:, 2:]], 1)
        b = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    one = 1.0 if mistake == "plus_one" else 0.0
    area = lambda x: (x[:, 2] - x[:, 0] + one) * (x[:, 3] - x[:, 1] + one)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = rb - lt + one
    if mistake != "no_clamp":
        wh = wh.clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[:, None] + area(b)[None, :]
    if mistake != "no_subtract":
        union = union - inter
    return inter / union


def iou_cases():
    fixed_a = torch.tensor([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 40], [0, 0, 4, 2]], dtype=torch.float64)
    fixed_b = torch.tensor([[0, 0, 10, 10], [10, 0, 20, 10], [12, 14, 40, 16], [1, 0.5, 3, 1.5], [25, 0, 26, 60]],
                           dtype=torch.float64)
    g = torch.Generator().manual_seed(9)
    xy = torch.rand(6, 2, generator=g, dtype=torch.float64) * 50
    rand_a = torch.round(torch.cat([xy, xy + 5 + torch.rand(6, 2, generator=g, dtype=torch.float64) * 30], 1) * 100) / 100
    xy = torch.rand(3, 2, generator=g, dtype=torch.float64) * 50
    rand_b = torch.round(torch.cat([xy, xy + 5 + torch.rand(3, 2, generator=g, dtype=torch.float64) * 30], 1) * 100) / 100
    out = []
    for a, b in [(fixed_a, fixed_b), (rand_a, rand_b)]:
        assert torch.allclose(iou(a, b), torchvision.ops.box_iou(a, b))
        assert all(not torch.allclose(iou(a, b, m), iou(a, b)) for m in ("no_clamp", "xywh", "plus_one", "no_subtract"))
        out.append(dict(boxes1=a.tolist(), boxes2=b.tolist(), expected=r(iou(a, b), 8),
                        mistakes={m: r(iou(a, b, m), 8) for m in ("no_clamp", "xywh", "plus_one", "no_subtract")}))
    return out


# ---------------------------------------------------------------- q3 NMS

def nms(boxes, scores, classes, thr, mistake=None):
    order = scores.argsort(descending=True)
    keep, removed = [], set()
    for i in order.tolist():
        if i in removed:
            if mistake != "single_pass":
                continue
        else:
            keep.append(i)
        for j in order.tolist():
            if j == i or j in keep:
                continue
            same = mistake == "across_classes" or classes[j] == classes[i]
            overlap = iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0]
            too_much = overlap >= thr if mistake == "at_threshold" else overlap > thr
            if same and too_much and scores[j] <= scores[i]:
                removed.add(j)
    if mistake == "index_order":
        keep = sorted(keep)
    return keep


def nms_cases():
    # a chain: B overlaps A and C, A and C do not overlap; B is suppressed by A, so C must survive
    chain = torch.tensor([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10], [0, 0, 10, 10], [30, 30, 40, 40],
                          [31, 31, 41, 41]], dtype=torch.float64)
    chain_scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.95], dtype=torch.float64)
    chain_classes = torch.tensor([0, 0, 0, 1, 2, 2])
    g = torch.Generator().manual_seed(4)
    xy = torch.rand(14, 2, generator=g, dtype=torch.float64) * 30
    rb = torch.round(torch.cat([xy, xy + 8 + torch.rand(14, 2, generator=g, dtype=torch.float64) * 12], 1) * 100) / 100
    rs = torch.round(torch.rand(14, generator=g, dtype=torch.float64) * 1000) / 1000
    rc = torch.randint(0, 2, (14,), generator=g)
    # IoU exactly at the threshold: 50 / 100 = 0.5 is not *greater* than 0.5, so both boxes stay
    tie = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 4]], dtype=torch.float64)
    tie_scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    tie_classes = torch.tensor([0, 0, 0])
    out = []
    for boxes, scores, classes, thr in [(chain, chain_scores, chain_classes, 0.3), (rb, rs, rc, 0.4),
                                        (tie, tie_scores, tie_classes, 0.5)]:
        ref = nms(boxes, scores, classes, thr)
        assert ref == torchvision.ops.batched_nms(boxes, scores, classes, thr).tolist(), ref
        mistakes = {m: nms(boxes, scores, classes, thr, m) for m in ("across_classes", "single_pass", "index_order",
                                                                     "at_threshold")}
        out.append(dict(boxes=boxes.tolist(), scores=scores.tolist(), classes=classes.tolist(), iou_threshold=thr,
                        expected=ref, mistakes=mistakes))
    for m in out[0]["mistakes"]:  # every mistake gives a different answer on some case
        assert any(case["mistakes"][m] != case["expected"] for case in out), m
    return out


def main() -> None:
    data = dict(
        decode=[decode_case(1, 2, 3, 2, 3, 8), decode_case(2, 3, 1, 3, 2, 16)],
        iou=iou_cases(),
        nms=nms_cases(),
    )
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
