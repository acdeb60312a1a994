"""Helpers that only notebook 09 (object detection with YOLO) uses: photos, drawing, the threshold widget.

Nothing here decodes a YOLO head, computes IoU or suppresses boxes: those are
the notebook's exercises, and the functions below take them as arguments.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from ..assets import resolve
from ..detection import Darknet, letterbox, parse_cfg
from ..tables import text_table
from ..widgets import _display, _html_table, _use_widgets, figure_png

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
    picture = widgets.Image(format="png")
    summary = widgets.HTML()

    def draw(_=None) -> None:
        b, _, _, n = survivors(score.value, iou.value)
        summary.value = _html_table(header, [[f"{score.value:.2f}", f"{iou.value:.2f}", str(n), str(len(b))]])
        picture.value = figure_png(figure(score.value, iou.value))

    score.observe(draw, names="value")
    iou.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox([score, iou]), picture, summary])
    _display(box)
    return box
