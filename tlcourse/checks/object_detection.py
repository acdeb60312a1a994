"""Checks for notebook 09, object detection with YOLO.

q1 ``decode_head(raw, anchors, stride)``: a YOLO head's raw output to boxes in
pixels, objectness and class probabilities; q2 ``box_iou(boxes1, boxes2)``:
pairwise IoU of corner-format boxes; q3 ``nms(boxes, scores, classes,
iou_threshold)``: per-class non-maximum suppression; q4 ``assign_targets(tile_boxes,
heads, size)``: YOLOv3's target assignment (which cell and anchor answers for each box).

The checks hold no reference implementation: they compare the learner's
outputs on fixed inputs with numbers stored in
``object_detection_expected.json`` (written once by
``scripts/make_object_detection_checks.py``, outside the package, and
checked there against ``torchvision.ops``), and name a mistake when the
answer matches a stored wrong answer or breaks a property of the right one.
"""
from __future__ import annotations

import functools
import inspect
import json
import pathlib

import numpy as np
import torch

from ._core import Question, QuestionSet, Wrong

_EXPECTED = pathlib.Path(__file__).with_name("object_detection_expected.json")


@functools.lru_cache(maxsize=1)
def _cases() -> dict:
    return json.loads(_EXPECTED.read_text())


def _t(x, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


def _as_tensor(out, what: str) -> torch.Tensor:
    if out is None:
        raise Wrong(f"`{what}` returned None; end it with `return ...`.")
    try:
        return torch.as_tensor(np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out)).double()
    except Exception:
        raise Wrong(f"`{what}` must return a tensor, got {type(out).__name__}.") from None


def _names_used(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_used(const)
    return names


def _no_library(fn, what: str) -> None:
    """The exercise is to write it: calling torchvision's version is what we check against."""
    message = (f"`{what}` calls torchvision's implementation. The point is to write it yourself from tensor "
               "operations; torchvision.ops is the reference your answer is compared with.")
    code, scope = getattr(fn, "__code__", None), getattr(fn, "__globals__", {})
    if code is not None:  # a name bound to torchvision's function at cell level (`from torchvision.ops import ...`)
        for name in _names_used(code):
            module = getattr(scope.get(name), "__module__", "") or getattr(scope.get(name), "__name__", "")
            if module.startswith("torchvision"):
                raise Wrong(message)
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return
    if "torchvision" in src or "batched_nms" in src:
        raise Wrong(message)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))


# ---------------------------------------------------------------- q1 decode the head

def _eval_decode(decode_head) -> None:
    for case in _cases()["decode"]:
        raw, anchors = _t(case["raw"]), _t(case["anchors"])
        raw_in, anchors_in = raw.clone(), anchors.clone()
        out = _as_tensor(decode_head(raw_in, anchors_in, case["stride"]), "decode_head")
        if not (torch.equal(raw_in, raw) and torch.equal(anchors_in, anchors)):
            raise Wrong("`decode_head` changed its inputs in place; compute into new tensors.")
        want = _t(case["expected"], torch.float64)
        a, h, w = anchors.shape[0], raw.shape[2], raw.shape[3]
        c = raw.shape[1] // a - 5
        if out.shape != want.shape:
            raise Wrong(f"for raw output of shape {tuple(raw.shape)} ({a} anchors, {c} classes, a {h}x{w} grid) "
                        f"expected shape {tuple(want.shape)}: (batch, anchors x rows x columns, 4 + 1 + classes); "
                        f"got {tuple(out.shape)}.")
        if _close(out, want):
            continue
        if not _close(out[..., 4:], want[..., 4:]):
            if _close(out.sort(dim=1).values, want.sort(dim=1).values):
                raise Wrong("right numbers in the wrong order: the predictions must be listed anchor by "
                            "anchor, and within an anchor row by row, column by column (view the channels as "
                            "(anchors, 5 + classes), then move the 5 + classes axis last).")
            if _close(out[..., 5:].sum(-1), torch.ones_like(out[..., 5])) and c > 1:
                raise Wrong("your class probabilities sum to 1 over the classes: that is a softmax. YOLOv3 "
                            "scores each class with its own sigmoid (a box can be both 'person' and 'woman').")
            raise Wrong("objectness or class probabilities differ: both are the sigmoid of their raw values "
                        "(channels 4 and 5 onwards of each anchor's block).")
        box, want_box = out[..., :4], want[..., :4]
        want_wh = want_box[..., 2:] - want_box[..., :2]
        want_centre = (want_box[..., 2:] + want_box[..., :2]) / 2
        if _close(box[..., 2:], want_wh) or _close(box[..., :2], want_centre):
            raise Wrong("your boxes are (centre x, centre y, width, height): the exercise asks for corners "
                        "(x1, y1, x2, y2) = centre minus and plus half the size. IoU and NMS below expect "
                        "corner format, like torchvision.ops.")
        got_wh = box[..., 2:] - box[..., :2]
        got_centre = (box[..., 2:] + box[..., :2]) / 2
        stride = case["stride"]
        if _close(got_wh, want_wh * stride) or _close(got_wh, want_wh / stride):
            raise Wrong(f"box sizes are off by the stride ({stride}): the anchors are given in input pixels, "
                        "so width = anchor width x exp(raw); do not multiply or divide them by the stride.")
        if _close(got_centre, want_centre / stride):
            raise Wrong("box centres are in grid cells: multiply (sigmoid offset + cell index) by the stride "
                        "to get input pixels.")
        if _close(got_wh, want_wh) and not _close(got_centre, want_centre):
            raise Wrong("sizes are right but centres are not: the centre of a prediction in cell (row, col) is "
                        "(col + sigmoid(tx), row + sigmoid(ty)) x stride. Check the sigmoid on the offsets and "
                        "that x goes with columns, y with rows.")
        if _close(got_centre, want_centre):
            raise Wrong("centres are right but sizes are not: width = anchor width x exp(tw), height = anchor "
                        "height x exp(th), each anchor with its own (w, h).")
        raise Wrong("the boxes differ from the expected decoding (objectness and classes are right).")


# ---------------------------------------------------------------- q2 IoU

_IOU_MISTAKES = {
    "no_clamp": "boxes that do not overlap get a non-zero IoU: the width or height of their 'intersection' is "
                "negative (and two negatives multiply to a positive area). Clamp the intersection's width and "
                "height at zero before multiplying.",
    "xywh": "your IoU reads the boxes as (x, y, width, height); they are corners (x1, y1, x2, y2), so the "
            "width is x2 - x1.",
    "plus_one": "you added 1 to widths and heights (the old Pascal VOC pixel convention); with continuous "
                "coordinates a box from x1 to x2 is x2 - x1 wide.",
    "no_subtract": "your union is the sum of the two areas: the intersection is counted twice. Union = "
                   "area1 + area2 - intersection (identical boxes must give IoU 1).",
}


def _eval_iou(box_iou) -> None:
    _no_library(box_iou, "box_iou")
    for case in _cases()["iou"]:
        a, b = _t(case["boxes1"]), _t(case["boxes2"])
        out = _as_tensor(box_iou(a.clone(), b.clone()), "box_iou")
        want = _t(case["expected"], torch.float64)
        if out.shape != want.shape:
            raise Wrong(f"for {len(a)} and {len(b)} boxes expected a ({len(a)}, {len(b)}) matrix, one IoU for "
                        f"every pair; got shape {tuple(out.shape)}. Broadcast boxes1[:, None] against "
                        "boxes2[None, :].")
        if _close(out, want, 1e-5):
            continue
        for name, values in case["mistakes"].items():
            if _close(out, _t(values, torch.float64), 1e-5):
                raise Wrong(_IOU_MISTAKES[name])
        if (out < -1e-9).any() or (out > 1 + 1e-9).any():
            raise Wrong("an IoU outside [0, 1]: intersection over union is a fraction of the union.")
        raise Wrong("some IoUs differ from the expected values (identical boxes must give 1, disjoint 0).")


# ---------------------------------------------------------------- q3 NMS

_NMS_MISTAKES = {
    "across_classes": "a box was suppressed by a box of another class: a dog overlapping a person must survive. "
                      "Suppress only within the same class.",
    "single_pass": "a box that was already suppressed went on suppressing others. Only boxes you keep may "
                   "remove lower-scoring ones: walk the boxes from the highest score down and compare each with "
                   "the boxes kept so far.",
    "index_order": "the right boxes, in index order: return them by decreasing score, as torchvision does.",
    "at_threshold": "a box whose IoU with a kept box equals the threshold exactly was suppressed. Suppress only "
                    "when the IoU is strictly greater than iou_threshold (torchvision's rule).",
}


def _eval_nms(nms) -> None:
    _no_library(nms, "nms")
    for case in _cases()["nms"]:
        boxes, scores = _t(case["boxes"]), _t(case["scores"])
        classes = torch.tensor(case["classes"])
        out = _as_tensor(nms(boxes.clone(), scores.clone(), classes.clone(), case["iou_threshold"]), "nms")
        if out.dtype == torch.bool or (out.ndim == 1 and len(out) == len(boxes) and set(out.tolist()) <= {0, 1}
                                        and len(case["expected"]) != len(boxes)):
            raise Wrong("return the indices of the kept boxes (a LongTensor), not a mask.")
        got = [int(i) for i in out.flatten().tolist()]
        if got == case["expected"]:
            continue
        for name, values in case["mistakes"].items():
            if got == values:
                raise Wrong(_NMS_MISTAKES[name])
        if sorted(got) == sorted(case["expected"]):
            raise Wrong("the right boxes in the wrong order: return them by decreasing score.")
        if set(got) < set(case["expected"]):
            raise Wrong(f"you kept {len(got)} boxes where {len(case['expected'])} survive: something suppresses "
                        f"too much (IoU strictly above iou_threshold={case['iou_threshold']}, same class, "
                        "by a kept box).")
        raise Wrong(f"kept {got}, expected {case['expected']} (threshold {case['iou_threshold']}).")


# ---------------------------------------------------------------- q4 target assignment

_TARGET_KEYS = ("obj", "xy", "wh", "cls")
_TARGET_MISTAKES = {
    "swap_xy": "the right boxes land in transposed cells: the grids are indexed [tile, anchor, row, column], and "
               "the row comes from the centre's y, the column from its x (x goes with columns, as in decode_head).",
    "round": "a box went to the cell whose corner is nearest its centre: the responsible cell is the one that "
             "holds the centre, i.e. the floor of centre / stride (a centre exactly on a border belongs to the "
             "cell to its right or below), and the offset inside it is then between 0 and 1.",
    "full_iou": "you chose the anchor by the IoU of the box where it is with an anchor box somewhere else: the "
                "choice is about shape only. Compare each box with each anchor as if both were centred on the same "
                "point: overlap = min of the widths x min of the heights.",
    "grid_units": "you measured the box in grid cells (divided by the stride) but the anchors are in input "
                  "pixels: compare and divide sizes in the same unit, pixels.",
    "per_head": "every head took every box (each with its own best anchor): in YOLOv3 one anchor over ALL heads "
                "is responsible for a box, the best-matching shape, and only its head gets a target.",
    "xy_absolute": "your x, y targets are the centre in grid coordinates: the target is the offset inside the "
                   "responsible cell (centre / stride minus the cell index), between 0 and 1, what "
                   "sigmoid(tx) predicts in decode_head.",
    "no_log": "your size targets are the ratio box / anchor: the target is its logarithm, what tw and th "
              "predict (decode_head takes exp of them).",
}


def _target_rows(out, heads, n_tiles: int, size: int) -> list[list[list[float]]]:
    """The learner's targets as sparse rows per head: [tile, anchor, row, col, x, y, log w, log h]."""
    if out is None:
        raise Wrong("`assign_targets` returned None; end it with `return ...` (one dict per head).")
    if not isinstance(out, (list, tuple)) or len(out) != len(heads):
        raise Wrong(f"return a list with one dict per head ({len(heads)} heads here), in the order of `heads`; "
                    f"got {type(out).__name__}" + (f" of length {len(out)}" if hasattr(out, "__len__") else "") + ".")
    rows = []
    for k, (t, h) in enumerate(zip(out, heads)):
        if not isinstance(t, dict) or set(_TARGET_KEYS) - set(t):
            raise Wrong(f"head {k}: return a dict with the keys {list(_TARGET_KEYS)}.")
        g, a = size // h.stride, len(h.anchors)
        want = {"obj": (n_tiles, a, g, g), "xy": (n_tiles, a, g, g, 2), "wh": (n_tiles, a, g, g, 2),
                "cls": (n_tiles, a, g, g, h.num_classes)}
        got = {key: _as_tensor(t[key], f"assign_targets(...)[{k}]['{key}']") for key in _TARGET_KEYS}
        for key, shape in want.items():
            if tuple(got[key].shape) != shape:
                raise Wrong(f"head {k} (stride {h.stride}, {a} anchors, a {g}x{g} grid for {n_tiles} tiles of "
                            f"{size} pixels): '{key}' must have shape {shape}, i.e. (tiles, anchors, rows, "
                            f"columns{'' if key == 'obj' else ', values'}); got {tuple(got[key].shape)}.")
        pos = got["obj"] > 0.5
        cls = got["cls"][pos]
        if len(cls) and not (_close(cls[:, 0], torch.ones(len(cls), dtype=cls.dtype))
                             and _close(cls[:, 1:], torch.zeros_like(cls[:, 1:]))):
            raise Wrong(f"head {k}: 'cls' must be one-hot at every responsible anchor: 1 for class 0 (every box "
                        "here is class 0), 0 for the other classes.")
        index = pos.nonzero().double()
        rows.append(sorted(torch.cat([index, got["xy"][pos], got["wh"][pos]], 1).tolist()))
    return rows


def _same_rows(a, b, tol: float = 1e-4) -> bool:
    return all(len(x) == len(y) and all(len(r) == len(s) and all(abs(u - v) <= tol for u, v in zip(r, s))
                                        for r, s in zip(x, y)) for x, y in zip(a, b)) and len(a) == len(b)


def _eval_targets(assign_targets) -> None:
    from ..detection import YoloHead

    for case in _cases()["targets"]:
        heads = [YoloHead(tuple(tuple(v) for v in anchors), stride, 1) for anchors, stride in case["heads"]]
        boxes = [_t(b).reshape(-1, 4) for b in case["boxes"]]
        boxes_in = [b.clone() for b in boxes]
        rows = _target_rows(assign_targets(boxes_in, heads, case["size"]), heads, len(boxes), case["size"])
        if not all(torch.equal(x, y) for x, y in zip(boxes_in, boxes)):
            raise Wrong("`assign_targets` changed the boxes in place; compute into new tensors.")
        want = case["expected"]
        if _same_rows(rows, want):
            continue
        for name, values in case["mistakes"].items():
            if _same_rows(rows, values):
                raise Wrong(_TARGET_MISTAKES[name])
        cells = lambda rs: [[r[:4] for r in h] for h in rs]
        for name in ("swap_xy", "round", "full_iou", "per_head", "grid_units"):  # the cells give these away
            if cells(rows) == cells(case["mistakes"][name]) != cells(want):
                raise Wrong(_TARGET_MISTAKES[name])
        if cells(rows) == cells(want):
            got_xy = [[r[4:6] for r in h] for h in rows]
            if _same_rows(got_xy, [[r[4:6] for r in h] for h in want]):
                raise Wrong("the right cells and anchors and the right offsets, but the size targets differ: "
                            "log(box width / anchor width) and log(box height / anchor height), with the "
                            "responsible anchor's (w, h) in pixels.")
            raise Wrong("the right cells and anchors, but the offsets differ: x = centre x / stride minus the "
                        "column, y = centre y / stride minus the row, the box centre being the middle of its "
                        "corners.")
        n_got, n_want = sum(map(len, rows)), sum(map(len, want))
        if n_got != n_want:
            raise Wrong(f"{n_got} responsible anchors in all where {n_want} boxes should each have exactly one "
                        "(in these tiles no two boxes want the same anchor of the same cell): mark only the best "
                        "anchor over all heads, in the cell that holds the box's centre.")
        raise Wrong("some boxes went to another cell or anchor: the responsible anchor is the one, over all heads, "
                    "whose (w, h) has the highest IoU with the box's (w, h) when both are centred on the same "
                    "point; the cell is the one of that anchor's head that holds the box's centre.")


q1 = Question(
    "q1", "decode a YOLO head", ["decode_head"], _eval_decode,
    hints=[
        "Each grid cell and anchor predicts four numbers for the box: two offsets inside the cell and two "
        "log-scale factors for the anchor's size, then an objectness and one score per class, all raw.",
        "Reshape the channels so that anchors and the 5 + C numbers are separate axes, then build the cell "
        "indices with a mesh grid over rows and columns; the anchors passed in are already in input pixels.",
        "Centre: cell index plus the sigmoid of the offset, times the stride. Size: the anchor times the "
        "exponential of the raw size. Corners: centre minus and plus half the size. Probabilities: sigmoids.",
    ],
    why="this is what every YOLO head computes: the network never outputs pixels, only offsets from a grid and "
        "scale factors of anchor boxes, which keeps the regression targets small and well conditioned.",
)

q2 = Question(
    "q2", "box IoU", ["box_iou"], _eval_iou,
    hints=[
        "IoU is the area of the overlap divided by the area covered by either box.",
        "The overlap of two axis-aligned boxes is itself a box: its top-left is the larger of the two top-lefts "
        "and its bottom-right the smaller of the two bottom-rights; compare every pair by broadcasting.",
        "An overlap with negative width or height means no overlap at all, so it must contribute zero area; "
        "the union counts the overlap once.",
    ],
    why="IoU is the yardstick of detection: NMS, matching predictions to ground truth, and AP@0.5 all use it.",
)

q3 = Question(
    "q3", "non-maximum suppression", ["nms"], _eval_nms,
    hints=[
        "A detector fires many overlapping boxes on one object; keep the most confident one and drop the boxes "
        "of the same class that overlap it too much, then repeat with what is left.",
        "Visit the boxes in order of decreasing score; your box_iou gives the overlaps you need.",
        "A box survives if no box already kept, of its class, overlaps it by more than the threshold; "
        "the answer lists the survivors' indices in the order they were kept.",
    ],
    why="without NMS a detector reports each object dozens of times; per-class NMS is the last step of "
        "YOLO, SSD and Faster R-CNN alike.",
)

q4 = Question(
    "q4", "YOLOv3's target assignment", ["assign_targets"], _eval_targets,
    hints=[
        "Training a detector needs, for every ground-truth box, one prediction that answers for it: YOLOv3 picks "
        "the anchor whose shape fits the box best and the grid cell that holds the box's centre, and asks that "
        "anchor to predict exactly what decode_head would turn back into the box.",
        "Two choices per box: the anchor, by comparing shapes only (widths and heights, as if box and anchor "
        "were centred on the same point) over the anchors of all heads; then, on that head's grid, the cell "
        "that holds the centre. The targets are decode_head's formulas run backwards.",
        "For one box: its width, height and centre from the corners; the shape IoU with every anchor, the "
        "overlap being the smaller width times the smaller height; the best anchor's head and index; the "
        "column and row as the "
        "floor of the centre divided by that head's stride; then objectness 1, the offset inside the cell, the "
        "log of box size over anchor size, and class 0 at [tile, anchor, row, column].",
    ],
    why="the targets decide what the network is asked to learn: a box assigned to the wrong cell or anchor is a "
        "box the detector is trained never to find, and the loss cannot tell you.",
)

questions = QuestionSet(q1, q2, q3, q4)
