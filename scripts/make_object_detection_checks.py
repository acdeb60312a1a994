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


# ---------------------------------------------------------------- q4 target assignment

TARGET_MISTAKES = ("swap_xy", "round", "full_iou", "grid_units", "per_head", "xy_absolute", "no_log")


def shape_iou(wh, anchors):
    inter = torch.min(wh[:, None, 0], anchors[None, :, 0]) * torch.min(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh.prod(1)[:, None] + anchors.prod(1)[None, :] - inter)


def targets(tile_boxes, heads, size, mistake=None):
    """YOLOv3's assignment, as sparse rows per head: [tile, anchor, row, col, x offset, y offset, log w, log h]."""
    rows = [dict() for _ in heads]
    for b, boxes in enumerate(tile_boxes):
        boxes = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
        wh, centre = boxes[:, 2:] - boxes[:, :2], (boxes[:, :2] + boxes[:, 2:]) / 2
        choices = []  # per box: the (head, anchor) pairs that take it
        for n in range(len(boxes)):
            if mistake == "per_head":
                choices.append([(k, int(shape_iou(wh[n:n + 1], torch.tensor(h[0], dtype=torch.float64)).argmax()))
                                for k, h in enumerate(heads)])
                continue
            owners = [(k, j) for k, h in enumerate(heads) for j in range(len(h[0]))]
            shapes = torch.tensor([a for h in heads for a in h[0]], dtype=torch.float64)
            if mistake == "full_iou":  # the box where it is against anchors at the origin
                anchor_boxes = torch.cat([torch.zeros_like(shapes), shapes], 1)
                score = torchvision.ops.box_iou(boxes[n:n + 1], anchor_boxes)[0]
            elif mistake == "grid_units":  # the box in grid cells against anchors in pixels
                strides = torch.tensor([heads[k][1] for k, _ in owners], dtype=torch.float64)
                inter = torch.min(wh[n, 0] / strides, shapes[:, 0]) * torch.min(wh[n, 1] / strides, shapes[:, 1])
                score = inter / ((wh[n] / strides[:, None]).prod(1) + shapes.prod(1) - inter)
            else:
                score = shape_iou(wh[n:n + 1], shapes)[0]
            choices.append([owners[int(score.argmax())]])
        for n, picks in enumerate(choices):
            for k, j in picks:
                anchors, stride = heads[k][0], heads[k][1]
                g = centre[n] / stride
                cell = g.round() if mistake == "round" else g.floor()
                col, row = int(cell[0]), int(cell[1])
                xy = g if mistake == "xy_absolute" else g - cell
                size_wh = wh[n] / stride if mistake == "grid_units" else wh[n]
                ratio = size_wh / torch.tensor(anchors[j], dtype=torch.float64)
                lwh = ratio if mistake == "no_log" else ratio.log()
                if mistake == "swap_xy":
                    row, col, xy = col, row, xy.flip(0)
                rows[k][(b, j, row, col)] = [b, j, row, col, *r(xy, 6), *r(lwh, 6)]
    return [sorted(h.values()) for h in rows]


def target_cases():
    coarse, fine = ([[81.0, 82.0], [135.0, 169.0], [344.0, 319.0]], 32), ([[10.0, 14.0], [23.0, 27.0], [37.0, 58.0]], 16)
    cases = [
        # two tiles: a wide box, a tall one, a box centred on a cell border (x = 48 exactly: column 3 of the fine
        # grid), two boxes in one cell taken by different anchors, and a big box for the coarse head
        dict(size=128, heads=[coarse, fine], boxes=[
            [[36.0, 4.0, 58.0, 16.0], [6.0, 40.0, 16.0, 98.0], [38.0, 70.0, 58.0, 94.0], [97.0, 98.0, 107.0, 112.0],
             [92.0, 96.0, 116.0, 124.0]],
            [[8.0, 20.0, 120.0, 100.0], [70.0, 21.0, 82.0, 35.5]]]),
        # a non-square input, one tile, anchors that are narrow and wide
        dict(size=96, heads=[([[30.0, 60.0], [60.0, 30.0]], 32), ([[8.0, 20.0], [20.0, 8.0]], 8)], boxes=[
            [[10.0, 50.0, 22.0, 55.0], [60.0, 5.0, 70.0, 29.0], [33.0, 40.0, 95.0, 70.0], [5.0, 60.0, 37.0, 94.0]]]),
    ]
    for c in cases:
        c["expected"] = targets(c["boxes"], c["heads"], c["size"])
        c["mistakes"] = {m: targets(c["boxes"], c["heads"], c["size"], m) for m in TARGET_MISTAKES}
    for m in TARGET_MISTAKES:  # every mistake gives a different answer on some case
        assert any(c["mistakes"][m] != c["expected"] for c in cases), m
    return cases


def main() -> None:
    data = dict(
        decode=[decode_case(1, 2, 3, 2, 3, 8), decode_case(2, 3, 1, 3, 2, 16)],
        iou=iou_cases(),
        nms=nms_cases(),
        targets=target_cases(),
    )
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
