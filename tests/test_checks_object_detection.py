"""Notebook 09's checks: correct answers written different ways pass; plausible mistakes are named."""
import torch

from tlcourse.checks import object_detection as od


def not_attempted(*args, **kwargs):
    raise NotImplementedError()


def verdict(q, fn):
    return q.verdict(fn)


# ---------------------------------------------------------------- q1 decode_head

def _decode(raw, anchors, stride, *, corners=True, anchor_scale=1.0, centre_scale=1.0, softmax=False,
            sigmoid_xy=True, order="ahw"):
    b, _, h, w = raw.shape
    a = anchors.shape[0]
    c = raw.shape[1] // a - 5
    t = raw.reshape(b, a, 5 + c, h, w).permute(0, 1, 3, 4, 2)
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    off = t[..., :2].sigmoid() if sigmoid_xy else t[..., :2]
    cx = (off[..., 0] + gx) * stride * centre_scale
    cy = (off[..., 1] + gy) * stride * centre_scale
    bw = anchors[:, 0].view(1, a, 1, 1) * t[..., 2].exp() * anchor_scale
    bh = anchors[:, 1].view(1, a, 1, 1) * t[..., 3].exp() * anchor_scale
    box = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2] if corners else [cx, cy, bw, bh], -1)
    cls = t[..., 5:].softmax(-1) if softmax else t[..., 5:].sigmoid()
    out = torch.cat([box, t[..., 4:5].sigmoid(), cls], -1)
    if order == "hwa":
        out = out.permute(0, 2, 3, 1, 4)
    return out.reshape(b, -1, 5 + c)


def decode_right(raw, anchors, stride):
    return _decode(raw, anchors, stride)


def decode_loops(raw, anchors, stride):
    b, ch, h, w = raw.shape
    a = len(anchors)
    n = ch // a
    rows = []
    for k in range(a):
        for i in range(h):
            for j in range(w):
                v = raw[0, k * n:(k + 1) * n, i, j]
                cx, cy = (j + torch.sigmoid(v[0])) * stride, (i + torch.sigmoid(v[1])) * stride
                bw, bh = anchors[k, 0] * torch.exp(v[2]), anchors[k, 1] * torch.exp(v[3])
                rows.append(torch.cat([torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]),
                                       torch.sigmoid(v[4:])]))
    return torch.stack(rows)[None]


def test_q1_correct_answers_pass():
    assert verdict(od.q1, decode_right).correct
    assert verdict(od.q1, decode_loops).correct


def test_q1_not_attempted():
    assert verdict(od.q1, not_attempted).status == "not_attempted"


def test_q1_mistakes_are_named():
    cases = {
        "centre x, centre y, width, height": lambda r, a, s: _decode(r, a, s, corners=False),
        "off by the stride": lambda r, a, s: _decode(r, a, s, anchor_scale=s),
        "in grid cells": lambda r, a, s: _decode(r, a, s, centre_scale=1 / s),
        "softmax": lambda r, a, s: _decode(r, a, s, softmax=True),
        "sigmoid on the offsets": lambda r, a, s: _decode(r, a, s, sigmoid_xy=False),
        "wrong order": lambda r, a, s: _decode(r, a, s, order="hwa"),
    }
    for message, fn in cases.items():
        v = verdict(od.q1, fn)
        assert v.status == "wrong" and message in v.message, (message, v.message)
    divided = verdict(od.q1, lambda r, a, s: _decode(r, a, s, anchor_scale=1 / s))
    assert "off by the stride" in divided.message


# ---------------------------------------------------------------- q2 box_iou

def iou_right(b1, b2):
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter / (area1[:, None] + area2[None, :] - inter)


def iou_loops(b1, b2):
    out = torch.zeros(len(b1), len(b2))
    for i, (ax1, ay1, ax2, ay2) in enumerate(b1.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(b2.tolist()):
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            ih = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = iw * ih
            out[i, j] = inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
    return out


def iou_no_clamp(b1, b2):
    lt = torch.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
    inter = (rb - lt).prod(-1)
    area1 = (b1[:, 2:] - b1[:, :2]).prod(-1)
    area2 = (b2[:, 2:] - b2[:, :2]).prod(-1)
    return inter / (area1[:, None] + area2[None, :] - inter)


def iou_xywh(b1, b2):
    to_xyxy = lambda b: torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    return iou_right(to_xyxy(b1), to_xyxy(b2))


def iou_no_subtract(b1, b2):
    lt = torch.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area1 = (b1[:, 2:] - b1[:, :2]).prod(-1)
    area2 = (b2[:, 2:] - b2[:, :2]).prod(-1)
    return inter / (area1[:, None] + area2[None, :])


def iou_diagonal(b1, b2):
    return torch.ones(len(b1))


def iou_torchvision(b1, b2):
    import torchvision
    return torchvision.ops.box_iou(b1, b2)


from torchvision.ops import box_iou as imported_iou  # noqa: E402


def iou_imported_at_module_level(b1, b2):
    return imported_iou(b1, b2)


def test_q2_correct_answers_pass():
    assert verdict(od.q2, iou_right).correct
    assert verdict(od.q2, iou_loops).correct


def test_q2_mistakes_are_named():
    for fn, message in [(iou_no_clamp, "Clamp the intersection"), (iou_xywh, "(x, y, width, height)"),
                        (iou_no_subtract, "counted twice"), (iou_diagonal, "one IoU for every pair"),
                        (iou_torchvision, "write it yourself"), (iou_imported_at_module_level, "write it yourself")]:
        v = verdict(od.q2, fn)
        assert v.status == "wrong" and message in v.message, (fn.__name__, v.message)


# ---------------------------------------------------------------- q3 nms

def nms_right(boxes, scores, classes, iou_threshold):
    order = scores.argsort(descending=True)
    keep = []
    for i in order.tolist():
        if all(classes[k] != classes[i] or iou_right(boxes[k:k + 1], boxes[i:i + 1])[0, 0] <= iou_threshold
               for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def nms_offset_trick(boxes, scores, classes, iou_threshold):
    # shift each class far apart, then one class-agnostic suppression with a suppressed mask
    shifted = boxes + classes[:, None].float() * (boxes.max() + 1)
    order = scores.argsort(descending=True)
    ious = iou_right(shifted[order], shifted[order])
    alive = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1:] &= ious[i, i + 1:] <= iou_threshold
    return order[alive]


def nms_across_classes(boxes, scores, classes, iou_threshold):
    return nms_right(boxes, scores, torch.zeros_like(classes), iou_threshold)


def nms_index_order(boxes, scores, classes, iou_threshold):
    return nms_right(boxes, scores, classes, iou_threshold).sort().values


def nms_single_pass(boxes, scores, classes, iou_threshold):
    order = scores.argsort(descending=True).tolist()
    removed = set()
    for i in order:
        for j in order:
            if scores[j] < scores[i] and classes[j] == classes[i] and \
                    iou_right(boxes[i:i + 1], boxes[j:j + 1])[0, 0] > iou_threshold:
                removed.add(j)
    return torch.tensor([i for i in order if i not in removed])


def nms_at_threshold(boxes, scores, classes, iou_threshold):
    keep = []
    for i in scores.argsort(descending=True).tolist():
        if all(classes[k] != classes[i] or iou_right(boxes[k:k + 1], boxes[i:i + 1])[0, 0] < iou_threshold
               for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def nms_torchvision(boxes, scores, classes, iou_threshold):
    import torchvision
    return torchvision.ops.batched_nms(boxes, scores, classes, iou_threshold)


def test_q3_correct_answers_pass():
    assert verdict(od.q3, nms_right).correct
    assert verdict(od.q3, nms_offset_trick).correct


def test_q3_mistakes_are_named():
    for fn, message in [(nms_across_classes, "another class"), (nms_index_order, "decreasing score"),
                        (nms_single_pass, "already suppressed"), (nms_at_threshold, "strictly greater"),
                        (nms_torchvision, "write it yourself")]:
        v = verdict(od.q3, fn)
        assert v.status == "wrong" and message in v.message, (fn.__name__, v.message)


def test_hints_hold_no_code():
    for q in (od.q1, od.q2, od.q3, od.q4):
        for h in q.hints:
            assert "(" not in h.replace("(x1, y1, x2, y2)", "") or "=" not in h, h
            assert "torch." not in h and "return" not in h


# ---------------------------------------------------------------- q4 assign_targets

def _assign(tile_boxes, heads, size, *, cell="floor", swap=False, choose="shape", per_head=False, grid_units=False,
            xy_absolute=False, log=True, one_anchor_per_cell=False, layout="bagg", swap_cells=False):
    out = []
    for h in heads:
        g, a = size // h.stride, len(h.anchors)
        out.append(dict(obj=torch.zeros(len(tile_boxes), a, g, g), xy=torch.zeros(len(tile_boxes), a, g, g, 2),
                        wh=torch.zeros(len(tile_boxes), a, g, g, 2),
                        cls=torch.zeros(len(tile_boxes), a, g, g, h.num_classes)))
    owners = [(k, j) for k, h in enumerate(heads) for j in range(len(h.anchors))]
    for b, boxes in enumerate(tile_boxes):
        for box in boxes:
            wh, centre = box[2:] - box[:2], (box[:2] + box[2:]) / 2
            picks = []
            for group in ([[o for o in owners if o[0] == k] for k in range(len(heads))] if per_head else [owners]):
                best, best_score = None, -1.0
                for k, j in group:
                    aw, ah = heads[k].anchors[j]
                    w, h_ = (wh / heads[k].stride).tolist() if grid_units else wh.tolist()
                    if choose == "shape":
                        inter = min(w, aw) * min(h_, ah)
                    else:  # the box where it is against the anchor at the origin
                        inter = max(0.0, min(float(box[2]), aw) - max(float(box[0]), 0.0)) * \
                            max(0.0, min(float(box[3]), ah) - max(float(box[1]), 0.0))
                    score = inter / (w * h_ + aw * ah - inter)
                    if score > best_score:
                        best, best_score = (k, j), score
                picks.append(best)
            for k, j in picks:
                stride = heads[k].stride
                grid = centre / stride
                col, row = [int(v) for v in (grid.round() if cell == "round" else grid.floor())]
                xy = grid if xy_absolute else grid - torch.tensor([col, row])
                size_wh = wh / stride if grid_units else wh
                ratio = size_wh / torch.tensor(heads[k].anchors[j])
                t = out[k]
                if swap:
                    row, col, xy = col, row, xy.flip(0)
                if swap_cells:  # indexed [x, y], offsets still (x, y)
                    row, col = col, row
                if one_anchor_per_cell:
                    t["obj"][b, :, row, col] = 0
                t["obj"][b, j, row, col] = 1
                t["xy"][b, j, row, col] = xy
                t["wh"][b, j, row, col] = ratio.log() if log else ratio
                t["cls"][b, j, row, col, 0] = 1
    if layout == "bgga":
        out = [{k: v.movedim(1, 3) for k, v in t.items()} for t in out]
    return out


def assign_right(tile_boxes, heads, size):
    return _assign(tile_boxes, heads, size)


def assign_vectorised(tile_boxes, heads, size):
    """The same computation over all boxes of a tile at once."""
    shapes = torch.tensor([a for h in heads for a in h.anchors])
    head_of = torch.tensor([k for k, h in enumerate(heads) for _ in h.anchors])
    index_of = torch.tensor([j for h in heads for j in range(len(h.anchors))])
    out = []
    for h in heads:
        g = size // h.stride
        z = torch.zeros(len(tile_boxes), len(h.anchors), g, g)
        out.append({"obj": z.clone(), "xy": torch.zeros(*z.shape, 2), "wh": torch.zeros(*z.shape, 2),
                    "cls": torch.zeros(*z.shape, h.num_classes)})
    for b, boxes in enumerate(tile_boxes):
        wh = boxes[:, 2:] - boxes[:, :2]
        centre = boxes[:, :2] + wh / 2
        inter = torch.minimum(wh[:, None], shapes[None]).prod(-1)
        best = (inter / (wh.prod(-1)[:, None] + shapes.prod(-1)[None] - inter)).argmax(1)
        for k, h in enumerate(heads):
            mine = head_of[best] == k
            if not mine.any():
                continue
            grid = centre[mine] / h.stride
            cell = grid.long()  # centres are positive: truncation is the floor
            j = index_of[best[mine]]
            t = out[k]
            t["obj"][b, j, cell[:, 1], cell[:, 0]] = 1
            t["xy"][b, j, cell[:, 1], cell[:, 0]] = grid - cell
            t["wh"][b, j, cell[:, 1], cell[:, 0]] = torch.log(wh[mine] / shapes[best[mine]])
            t["cls"][b, j, cell[:, 1], cell[:, 0], 0] = 1
    return out


def test_q4_correct_answers_pass():
    assert verdict(od.q4, assign_right).correct, verdict(od.q4, assign_right)
    assert verdict(od.q4, assign_vectorised).correct, verdict(od.q4, assign_vectorised)


def test_q4_not_attempted():
    assert verdict(od.q4, not_attempted).status == "not_attempted"


def test_q4_mistakes_are_named():
    cases = {
        "transposed cells": dict(swap=True),
        "transposed cells ": dict(swap_cells=True),
        "holds the centre, i.e. the floor": dict(cell="round"),
        "shape only": dict(choose="full"),
        "same unit, pixels": dict(grid_units=True),
        "every head took every box": dict(per_head=True),
        "offset inside the": dict(xy_absolute=True),
        "its logarithm": dict(log=False),
        "must have shape": dict(layout="bgga"),
    }
    for words, kwargs in cases.items():
        v = verdict(od.q4, lambda tb, h, s, kw=kwargs: _assign(tb, h, s, **kw))
        assert not v.correct and words.strip() in v.message, (kwargs, v.message)


def test_q4_two_boxes_in_one_cell_keep_both_anchors():
    v = verdict(od.q4, lambda tb, h, s: _assign(tb, h, s, one_anchor_per_cell=True))
    assert not v.correct and "exactly one" in v.message, v.message


def test_q4_other_return_types_are_explained():
    v = verdict(od.q4, lambda tb, h, s: None)
    assert not v.correct and "returned None" in v.message
    v = verdict(od.q4, lambda tb, h, s: assign_right(tb, h, s)[:1])
    assert not v.correct and "one dict per head" in v.message
    def no_cls(tb, h, s):
        return [{k: v for k, v in t.items() if k != "cls"} for t in assign_right(tb, h, s)]
    assert "keys" in verdict(od.q4, no_cls).message
    def in_place(tb, h, s):
        out = assign_right(tb, h, s)
        for b in tb:
            b += 1
        return out
    assert "in place" in verdict(od.q4, in_place).message
