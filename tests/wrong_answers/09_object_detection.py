"""Plausible wrong answers for notebook 09, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Returns centre and size (xywh) instead of corners: the most common YOLO decoding slip.
    "q1_decode_solution": '''
def decode_head(raw: torch.Tensor, anchors: torch.Tensor, stride: int) -> torch.Tensor:
    b, _, h, w = raw.shape
    a = anchors.shape[0]
    t = raw.reshape(b, a, -1, h, w).permute(0, 1, 3, 4, 2)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=raw.dtype), torch.arange(w, dtype=raw.dtype), indexing="ij")
    cx = (torch.sigmoid(t[..., 0]) + cols) * stride
    cy = (torch.sigmoid(t[..., 1]) + rows) * stride
    size = torch.exp(t[..., 2:4]) * anchors.reshape(1, a, 1, 1, 2)
    out = torch.cat([torch.stack([cx, cy], -1), size, torch.sigmoid(t[..., 4:])], dim=-1)
    return out.reshape(b, a * h * w, -1)
''',
    # Forgets to clamp the intersection at zero: disjoint boxes get a non-zero (even positive) IoU.
    "q2_iou_solution": '''
def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt)[..., 0] * (rb - lt)[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)
''',
    # Suppresses across classes: a person overlapping a dog removes the dog.
    "q3_nms_solution": '''
def nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = torch.argsort(scores, descending=True)
    overlaps = box_iou(boxes, boxes)
    kept = []
    for i in order.tolist():
        if all(overlaps[k, i] <= iou_threshold for k in kept):
            kept.append(i)
    return torch.tensor(kept, dtype=torch.long)
''',
    # Indexes the grids [x, y] instead of [row, column]: every crown lands in the transposed cell.
    "q4_targets_solution": '''
def assign_targets(tile_boxes, heads, size):
    anchors = torch.tensor([a for h in heads for a in h.anchors], dtype=torch.float32)
    owner = [(k, j) for k, h in enumerate(heads) for j in range(len(h.anchors))]
    targets = []
    for h in heads:
        g, a = size // h.stride, len(h.anchors)
        targets.append({"obj": torch.zeros(len(tile_boxes), a, g, g), "xy": torch.zeros(len(tile_boxes), a, g, g, 2),
                        "wh": torch.zeros(len(tile_boxes), a, g, g, 2),
                        "cls": torch.zeros(len(tile_boxes), a, g, g, h.num_classes)})
    for b, boxes in enumerate(tile_boxes):
        wh = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        overlap = torch.minimum(wh[:, None, 0], anchors[None, :, 0]) * torch.minimum(wh[:, None, 1], anchors[None, :, 1])
        shape_iou = overlap / (wh.prod(1)[:, None] + anchors.prod(1)[None, :] - overlap)
        for n, best in enumerate(shape_iou.argmax(1).tolist()):
            k, j = owner[best]
            grid = centre[n] / heads[k].stride
            x, y = grid.floor().long().tolist()
            t = targets[k]
            t["obj"][b, j, x, y] = 1
            t["xy"][b, j, x, y] = grid - torch.tensor([x, y])
            t["wh"][b, j, x, y] = torch.log(wh[n] / anchors[best])
            t["cls"][b, j, x, y, 0] = 1
    return targets
''',
}

EXPECTED_LOST = {"q1_decode_tests", "q2_iou_tests", "q3_nms_tests", "q4_targets_tests"}
