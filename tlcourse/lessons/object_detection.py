"""Helpers that only notebook 09 (object detection with YOLO) uses: photos, drawing, the threshold widget.

Nothing here decodes a YOLO head, computes box IoU, suppresses boxes or assigns
training targets: those are the notebook's exercises, and the functions below
take them, or their output, as arguments (the tree-crown evaluation uses
torchvision's NMS, which the learner's matches). The transfer section's pieces
live here too: tiles and boxes of deepforest's aerial images, anchors by
k-means, YOLOv3's loss on the learner's targets, head training on cached
backbone features, and AP from torchmetrics.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..assets import resolve
from ..detection import Darknet, YoloHead, head_inputs, letterbox, parse_cfg
from ..device import one_thread, pick_device
from ..train import run_steps
from ..tables import text_table
from ..widgets import _html_table, _use_widgets, slider_explorer

# foolbox's ImageNet samples that show COCO objects (ImageNet class in brackets)
PHOTOS = {
    "imagenet_06_609.jpg": "jeep (ImageNet 609)",
    "imagenet_07_609.jpg": "jeep (ImageNet 609)",
    "imagenet_00_243.jpg": "bull mastiff (ImageNet 243)",
    "imagenet_16_251.jpg": "dalmatian (ImageNet 251)",
    "imagenet_15_99.jpg": "goose (ImageNet 99)",
    "imagenet_17_22.jpg": "bald eagle (ImageNet 22)",
}
# the article's autonomous-vehicle example, as COCO class names
STREET_CLASSES = ("person", "bicycle", "car", "motorbike", "bus", "truck", "traffic light", "stop sign")


def load_photos(n: int | None = None) -> dict[str, torch.Tensor]:
    """``{description: (3, H, W) float image in [0, 1]}`` for the first ``n`` of :data:`PHOTOS`."""
    files = resolve("imagenet-samples")
    out = {}
    for name, what in list(PHOTOS.items())[:n]:
        rgb = np.asarray(Image.open(files[name]).convert("RGB"), dtype=np.float32) / 255
        out[f"{name.split('_')[1]}: {what}"] = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    return out


def prepare(photos: dict[str, torch.Tensor], size: int) -> tuple[torch.Tensor, list[tuple[float, tuple[int, int]]]]:
    """Letterbox every photo to ``size``: a batch, and each photo's (scale, padding) to map boxes back."""
    boxed = [letterbox(img, size) for img in photos.values()]
    return torch.stack([b[0] for b in boxed]), [(b[1], b[2]) for b in boxed]


def to_original(boxes: torch.Tensor, scale: float, pad: tuple[int, int]) -> torch.Tensor:
    """Boxes on the letterboxed input back to the original photo's pixels."""
    shift = torch.tensor([pad[0], pad[1], pad[0], pad[1]], dtype=boxes.dtype)
    return (boxes - shift) / scale


def random_detector(seed: int) -> Darknet:
    """YOLOv3-tiny's architecture with fresh random weights: the control for the pretrained one."""
    torch.manual_seed(seed)
    model = Darknet(parse_cfg(resolve("yolov3-tiny", download=False)["yolov3-tiny.cfg"].read_text()))
    return model.eval()


def timed_forward(model: torch.nn.Module, batch: torch.Tensor) -> tuple[list[torch.Tensor], float]:
    """The raw head outputs and the seconds per image."""
    t0 = time.perf_counter()
    with torch.no_grad():
        raw = model(batch)
    return raw, (time.perf_counter() - t0) / len(batch)


def draw_detections(ax, image: torch.Tensor, boxes, scores, classes, class_names: Sequence[str],
                    title: str = "", highlight: Sequence[str] = STREET_CLASSES) -> None:
    """One photo with its boxes, class names and scores (street classes in red)."""
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    for box, score, cls in zip(torch.as_tensor(boxes).tolist(), torch.as_tensor(scores).tolist(),
                               torch.as_tensor(classes).tolist()):
        name = class_names[int(cls)]
        colour = "red" if name in highlight else "yellow"
        x1, y1, x2, y2 = box
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, linewidth=2))
        ax.text(x1, y1, f"{name} {score:.2f}", color="black", fontsize=8, va="bottom",
                bbox=dict(facecolor=colour, alpha=0.7, pad=1, linewidth=0))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def show_detections(photos: dict[str, torch.Tensor], detections: Sequence[tuple], class_names: Sequence[str],
                    cols: int = 3):
    """A grid of photos, each with its ``(boxes, scores, classes)``."""
    rows = -(-len(photos) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax, (title, img), det in zip(axes.flat, photos.items(), detections):
        draw_detections(ax, img, *det, class_names, title)
    for ax in list(axes.flat)[len(photos):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def threshold_explorer(image: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                       nms: Callable, class_names: Sequence[str], interactive: bool | None = None,
                       static_settings=((0.05, 0.45), (0.25, 0.45), (0.25, 0.9), (0.6, 0.45))):
    """Sliders for the score threshold and NMS's IoU threshold, redrawing the surviving boxes.

    ``boxes``, ``scores``, ``classes`` are every candidate of one photo (already
    in its pixels); ``nms`` is the learner's suppression. Headless: a figure per
    setting in ``static_settings`` and a table of how many boxes survive.
    """
    def survivors(score_thr: float, iou_thr: float):
        keep = scores > score_thr
        b, s, c = boxes[keep], scores[keep], classes[keep]
        k = torch.as_tensor(nms(b, s, c, iou_thr), dtype=torch.long) if len(b) else torch.zeros(0, dtype=torch.long)
        return b[k], s[k], c[k], int(keep.sum())

    def figure(score_thr: float, iou_thr: float, ax=None):
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(5, 4))
        b, s, c, n = survivors(score_thr, iou_thr)
        draw_detections(ax, image, b, s, c, class_names,
                        f"score > {score_thr:.2f}: {n} candidates; NMS at IoU {iou_thr:.2f}: {len(b)} boxes")
        return ax.figure if own else None

    header = ["score threshold", "IoU threshold", "candidates", "boxes after NMS"]
    if not _use_widgets(interactive):
        rows = []
        fig, axes = plt.subplots(1, len(static_settings), figsize=(4.2 * len(static_settings), 3.8), squeeze=False)
        for ax, (st, it) in zip(axes.flat, static_settings):
            figure(st, it, ax)
            b, _, _, n = survivors(st, it)
            rows.append([f"{st:.2f}", f"{it:.2f}", str(n), str(len(b))])
        fig.tight_layout()
        print(text_table(header, rows))
        return fig

    import ipywidgets as widgets

    score = widgets.FloatSlider(value=0.25, min=0.01, max=0.95, step=0.01, description="score >",
                                continuous_update=False)
    iou = widgets.FloatSlider(value=0.45, min=0.05, max=1.0, step=0.05, description="NMS IoU",
                              continuous_update=False)

    def render(score_thr: float, iou_thr: float):
        b, _, _, n = survivors(score_thr, iou_thr)
        html = _html_table(header, [[f"{score_thr:.2f}", f"{iou_thr:.2f}", str(n), str(len(b))]])
        return html, figure(score_thr, iou_thr)

    return slider_explorer([score, iou], render, layout="figure-first")


# ---- transfer to a new domain: tree crowns in NEON aerial images (deepforest's sample data) ----
TREE_TRAIN = "2019_YELL_2_528000_4978000_image_crop2"  # Yellowstone: the training tiles come from here
TREE_TEST = "2019_YELL_2_541000_4977000_image_crop"  # another Yellowstone image: held out
TREE_OTHER_SITES = ("OSBS_029", "SOAP_061")  # Florida and California: held out, other forests


def load_tree_image(stem: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One aerial image (3, H, W) in [0, 1] and its tree-crown boxes (N, 4), (x1, y1, x2, y2) in pixels.
    Every object is a tree crown (SOAP's "Alive"/"Dead" labels are both trees)."""
    files = resolve("tree-crowns")
    rgb = np.asarray(Image.open(files[f"{stem}.png"]).convert("RGB"), dtype=np.float32) / 255
    boxes = [[float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
             for obj in ET.parse(files[f"{stem}.xml"]).getroot().iter("object")]
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), torch.tensor(boxes).reshape(-1, 4)


def tile(image: torch.Tensor, boxes: torch.Tensor, size: int, limit: int | None = None, zoom: int = 1,
         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Cut an image into ``size``×``size`` tiles, row by row (grey past the right and bottom edges).

    A box belongs to the tile that holds its centre, clipped to the tile. Tiles
    without a box are dropped; ``limit`` keeps the first ones, i.e. a spatial part.
    ``zoom``: cut ``size // zoom`` pixels and enlarge them ``zoom`` times (boxes too).
    """
    if zoom > 1:
        tiles, tile_boxes = tile(image, boxes, size // zoom, limit)
        return (F.interpolate(tiles, size=(size, size), mode="bilinear", align_corners=False),
                [b * size / (size // zoom) for b in tile_boxes])
    _, h, w = image.shape
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    tiles, tile_boxes = [], []
    for top in range(0, h, size):
        for left in range(0, w, size):
            inside = ((centre[:, 0] >= left) & (centre[:, 0] < left + size)
                      & (centre[:, 1] >= top) & (centre[:, 1] < top + size))
            if not inside.any():
                continue
            part = image[:, top:top + size, left:left + size]
            crop = torch.full((3, size, size), 0.5)
            crop[:, :part.shape[1], :part.shape[2]] = part
            shift = torch.tensor([left, top, left, top], dtype=boxes.dtype)
            tiles.append(crop)
            tile_boxes.append((boxes[inside] - shift).clamp(0, size))
            if limit is not None and len(tiles) == limit:
                return torch.stack(tiles), tile_boxes
    return torch.stack(tiles), tile_boxes


def kmeans_anchors(wh: torch.Tensor, k: int, seed: int = 0, iters: int = 100) -> torch.Tensor:
    """``k`` anchor sizes (w, h) fitted to box sizes by k-means with distance 1 − IoU (YOLOv2's choice:
    boxes compared as if centred on each other, so big boxes do not dominate), smallest area first."""
    g = torch.Generator().manual_seed(seed)
    centres = wh[torch.randperm(len(wh), generator=g)[:k]].clone()
    for _ in range(iters):
        inter = torch.minimum(wh[:, None, 0], centres[None, :, 0]) * torch.minimum(wh[:, None, 1], centres[None, :, 1])
        shape_iou = inter / (wh.prod(1)[:, None] + centres.prod(1)[None, :] - inter)
        nearest = shape_iou.argmax(1)
        moved = torch.stack([wh[nearest == j].median(0).values if (nearest == j).any() else centres[j]
                             for j in range(k)])
        if torch.equal(moved, centres):
            break
        centres = moved
    return centres[centres.prod(1).argsort()]


def anchors_per_head(anchors: torch.Tensor, heads: Sequence[YoloHead]) -> list[list[tuple[float, float]]]:
    """Share anchors (smallest first) among heads as darknet does: the finest grid gets the smallest."""
    per = len(anchors) // len(heads)
    by_stride = sorted(range(len(heads)), key=lambda i: heads[i].stride)
    out: list[list[tuple[float, float]]] = [[] for _ in heads]
    for rank, i in enumerate(by_stride):
        out[i] = [tuple(round(float(v), 1) for v in a) for a in anchors[rank * per:(rank + 1) * per]]
    return out


def backbone_features(model: Darknet, tiles: torch.Tensor, batch_size: int = 8) -> list[torch.Tensor]:
    """The frozen backbone run once over ``tiles``: what each head's output convolution sees (cached)."""
    chunks = []
    with torch.no_grad(), one_thread():
        for i in range(0, len(tiles), batch_size):
            chunks.append(head_inputs(model.eval(), tiles[i:i + batch_size]))
    return [torch.cat(parts) for parts in zip(*chunks)]


def init_objectness(heads: Sequence[torch.nn.Conv2d], targets: Sequence[dict[str, torch.Tensor]]) -> list[float]:
    """Start each new head's objectness bias at the log-odds of the share of responsible anchors (the
    prior-probability start of RetinaNet and YOLOv5): at 0 every one of thousands of anchors would say
    "object" with probability 0.5, and the first steps would go into unlearning that."""
    priors = []
    for conv, t in zip(heads, targets):
        share = float(t["obj"].mean().clamp(1e-4, 0.5))
        anchors = t["obj"].shape[1]
        with torch.no_grad():
            conv.bias.view(anchors, -1)[:, 4] = float(np.log(share / (1 - share)))
        priors.append(share)
    return priors


def yolo_loss(raw_outputs: Sequence[torch.Tensor], targets: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """YOLOv3's training loss on raw head outputs, summed over anchors and cells, averaged over tiles:
    binary cross-entropy for objectness (every cell), for the centre offsets and the classes (responsible
    anchors only), squared error for the log size factors (responsible anchors only). ``targets``: per head
    a dict of ``obj`` (B, A, H, W), ``xy`` and ``wh`` (B, A, H, W, 2), ``cls`` (B, A, H, W, C), as the
    notebook's ``assign_targets`` makes them."""
    total = raw_outputs[0].new_zeros(())
    for raw, t in zip(raw_outputs, targets):
        b, _, h, w = raw.shape
        p = raw.reshape(b, t["obj"].shape[1], -1, h, w).permute(0, 1, 3, 4, 2)
        pos = t["obj"] > 0
        total = total + F.binary_cross_entropy_with_logits(p[..., 4], t["obj"], reduction="sum")
        if pos.any():
            total = total + F.binary_cross_entropy_with_logits(p[..., :2][pos], t["xy"][pos], reduction="sum")
            total = total + F.mse_loss(p[..., 2:4][pos], t["wh"][pos], reduction="sum")
            total = total + F.binary_cross_entropy_with_logits(p[..., 5:][pos], t["cls"][pos], reduction="sum")
    return total / raw_outputs[0].shape[0]


def train_heads(heads: Sequence[torch.nn.Module], features: Sequence[torch.Tensor],
                targets: Sequence[dict[str, torch.Tensor]], steps: int, batch_size: int = 8, lr: float = 3e-3,
                seed: int = 0, device=None) -> list[float]:
    """Train only the new output convolutions on cached backbone features (``tlcourse.train.run_steps``)."""
    device = pick_device(device)
    params = [p for h in heads for p in h.parameters()]
    for h in heads:
        h.to(device).train()
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(features[0])

    def batches():
        for _ in range(steps):
            idx = torch.randperm(n, generator=g)[:batch_size]
            yield [f[idx] for f in features], [{k: v[idx] for k, v in t.items()} for t in targets]

    def step(batch):
        feats, tgts = batch
        loss = yolo_loss([h(f) for h, f in zip(heads, feats)], tgts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    with one_thread(device):
        losses = run_steps(step, batches(), device=device, total=steps)
    for h in heads:
        h.cpu().eval()
    return losses


def head_outputs(heads: Sequence[torch.nn.Module], features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The trained output convolutions applied to cached features: raw head outputs, as the network gives."""
    with torch.no_grad(), one_thread():
        return [h(f) for h, f in zip(heads, features)]


def boxes_from_heads(raw_outputs: Sequence[torch.Tensor], heads: Sequence[YoloHead], decode: Callable,
                     score_threshold: float = 0.05, iou_threshold: float = 0.45, max_boxes: int = 100) -> list[tuple]:
    """Per tile ``(boxes, scores, classes)``: ``decode`` (the learner's) on each head, score threshold,
    then per-class NMS (torchvision's, for speed: it computes the same as exercise 3)."""
    import torchvision

    decoded = torch.cat([decode(r, torch.tensor(h.anchors), h.stride) for r, h in zip(raw_outputs, heads)], dim=1)
    out = []
    for d in decoded:
        scores, classes = (d[:, 4:5] * d[:, 5:]).max(dim=1)
        keep = scores > score_threshold
        b, s, c = d[keep, :4], scores[keep], classes[keep]
        kept = torchvision.ops.batched_nms(b, s, c, iou_threshold)[:max_boxes]
        out.append((b[kept], s[kept], c[kept]))
    return out


def average_precision(detections: Sequence[tuple], truths: Sequence[torch.Tensor]) -> dict[str, float]:
    """COCO-style AP from torchmetrics (faster-coco-eval backend): ``ap50`` (IoU 0.5), ``ap`` (mean over
    IoU 0.5:0.95) and ``ar100`` (recall with up to 100 boxes per tile)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="faster_coco_eval")
    metric.update([dict(boxes=b.float(), scores=s.float(), labels=c.long()) for b, s, c in detections],
                  [dict(boxes=t.float(), labels=torch.zeros(len(t), dtype=torch.long)) for t in truths])
    r = metric.compute()
    return dict(ap50=float(r["map_50"]), ap=float(r["map"]), ar100=float(r["mar_100"]))


def show_tree_detections(tiles: torch.Tensor, truths: Sequence[torch.Tensor], rows: Sequence[tuple[str, Sequence]],
                         n: int = 2):
    """``n`` tiles side by side for each ``(title, detections)`` row: ground truth in white, detections in red."""
    fig, axes = plt.subplots(len(rows), n, figsize=(3.6 * n, 3.6 * len(rows)), squeeze=False)
    for r, (title, dets) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(tiles[i].permute(1, 2, 0).clamp(0, 1).numpy())
            for x1, y1, x2, y2 in truths[i].tolist():
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="white", linewidth=1))
            for x1, y1, x2, y2 in dets[i][0].tolist():
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="red", linewidth=1))
            ax.set_title(f"{title}: {len(dets[i][0])} boxes, {len(truths[i])} crowns", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


# ---- pedestrians: YOLO against OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005) ----
PEOPLE_PHOTOS = ("person.jpg", "kite.jpg", "dog.jpg", "horses.jpg")  # the last two have nobody in them
PEOPLE_FIX = ("tlcourse fetch darknet-photos (Debian/Ubuntu: apt-get download darknet, nothing installed; "
              "elsewhere online: from github.com/pjreddie/darknet) and pip install -r requirements/base.txt "
              "(opencv-python-headless)")


def load_people_photos(n: int | None = None, max_side: int = 640) -> tuple[dict[str, torch.Tensor], str]:
    """``({name: (3, H, W) image in [0, 1]}, "")`` for darknet's sample photos, each shrunk so that its longer
    side is at most ``max_side`` (both detectors then see the same pixels); or ``({}, reason and fix)`` when the
    photos or OpenCV are missing, so the section can say so instead of failing."""
    from ..assets import AssetError
    try:
        import cv2  # noqa: F401  (the HOG detector below)
        files = resolve("darknet-photos")
    except ImportError:
        return {}, f"OpenCV is not installed, so the HOG detector is unavailable. Fix: {PEOPLE_FIX}."
    except AssetError:
        return {}, f"darknet's sample photos are not on this machine. Fix: {PEOPLE_FIX}."
    out = {}
    for name in PEOPLE_PHOTOS[:n]:
        img = Image.open(files[name]).convert("RGB")
        img.thumbnail((max_side, max_side), Image.BILINEAR)
        rgb = np.asarray(img, dtype=np.float32) / 255
        out[name] = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    return out, ""


def hog_people(image: torch.Tensor, win_stride: int = 8, scale: float = 1.05,
               ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """OpenCV's pretrained HOG + linear SVM people detector on one (3, H, W) image in [0, 1]:
    boxes (N, 4) as (x1, y1, x2, y2) in pixels, SVM scores (N,), and the seconds it took."""
    import cv2

    cv2.setNumThreads(torch.get_num_threads())  # the same CPU threads as the network it is compared with
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    bgr = np.ascontiguousarray((image.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8))
    t0 = time.perf_counter()
    rects, weights = hog.detectMultiScale(bgr, winStride=(win_stride, win_stride), padding=(8, 8), scale=scale)
    seconds = time.perf_counter() - t0
    rects = torch.as_tensor(np.asarray(rects, dtype=np.float32).reshape(-1, 4))
    boxes = torch.cat([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1)
    return boxes, torch.as_tensor(np.asarray(weights, dtype=np.float32).reshape(-1)), seconds


def show_people(photos: dict[str, torch.Tensor], rows: Sequence[tuple[str, Sequence[tuple]]]):
    """One row per detector (``(title, [(boxes, scores) per photo])``), one column per photo: person boxes."""
    fig, axes = plt.subplots(len(rows), len(photos), figsize=(3.6 * len(photos), 3.0 * len(rows)), squeeze=False)
    for r, (title, dets) in enumerate(rows):
        for c, ((name, img), (boxes, scores)) in enumerate(zip(photos.items(), dets)):
            draw_detections(axes[r, c], img, boxes, scores, [0] * len(boxes), ["person"],
                            f"{title}, {name}: {len(boxes)} people")
    fig.tight_layout()
    return fig
