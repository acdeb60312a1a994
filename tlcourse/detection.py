"""A darknet detector as data: the cfg file read into a PyTorch module, the weights file loaded with a count check.

``load_detector("yolov3-tiny")`` returns a :class:`Darknet` module whose
``forward`` gives the *raw* output of each YOLO head, one tensor
(B, A·(5 + C), H, W) per scale, exactly as darknet's last convolutions
produce it. Turning those numbers into boxes (sigmoid offsets, grid cells,
anchor sizes) is the learner's job in notebook 09, so no decoding, IoU or
suppression lives here. Each head's anchors (in input pixels) and stride
are attributes of the module.

Darknet's weights file: a header (major, minor, revision as int32, then the
number of images seen, int64 from version 0.2), then float32 values for
each convolution in cfg order: batch-norm bias, scale, running mean,
running variance (or the convolution's bias when it has no batch norm),
then the convolution kernel. Every value must be used exactly once.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DetectorError(RuntimeError):
    """A cfg or weights file that does not describe the network; the message says what differs."""


def parse_cfg(text: str) -> list[dict[str, str]]:
    """``[section]`` blocks of ``key=value`` lines, in order; comments and blanks dropped."""
    blocks: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            blocks.append({"type": line.strip("[]").strip()})
        elif "=" in line and blocks:
            key, value = line.split("=", 1)
            blocks[-1][key.strip()] = value.strip()
        else:
            raise DetectorError(f"cfg line {raw!r} is neither a [section] nor key=value")
    if not blocks or blocks[0]["type"] not in ("net", "network"):
        raise DetectorError("a darknet cfg starts with a [net] section")
    return blocks


@dataclass(frozen=True)
class YoloHead:
    """What one head predicts: anchors (w, h) in input pixels, its stride and the class count."""

    anchors: tuple[tuple[float, float], ...]
    stride: int
    num_classes: int


class _Route(nn.Module):
    def __init__(self, sources: list[int]):
        super().__init__()
        self.sources = sources


class _Yolo(nn.Module):
    def __init__(self, anchors: list[tuple[float, float]], num_classes: int):
        super().__init__()
        self.anchors, self.num_classes = anchors, num_classes


def _conv_block(block: dict[str, str], in_ch: int) -> nn.Sequential:
    size, stride = int(block["size"]), int(block.get("stride", 1))
    pad = size // 2 if int(block.get("pad", 0)) else 0
    bn = int(block.get("batch_normalize", 0))
    layers: list[nn.Module] = [nn.Conv2d(in_ch, int(block["filters"]), size, stride, pad, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(int(block["filters"]), momentum=0.01, eps=1e-5))
    act = block.get("activation", "linear")
    if act == "leaky":
        layers.append(nn.LeakyReLU(0.1))
    elif act != "linear":
        raise DetectorError(f"activation {act!r} is not supported (leaky or linear)")
    return nn.Sequential(*layers)


class _MaxPool(nn.Module):
    """Darknet's max-pool; with stride 1 it pads right and bottom so the size is kept."""

    def __init__(self, size: int, stride: int):
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x):
        if self.stride == 1:  # replicate: an out-of-image position never wins a max
            x = F.pad(x, (0, self.size - 1, 0, self.size - 1), mode="replicate")
        return F.max_pool2d(x, self.size, self.stride)


class Darknet(nn.Module):
    """A darknet network built from its cfg blocks; ``forward`` returns each YOLO head's raw output."""

    def __init__(self, blocks: list[dict[str, str]]):
        super().__init__()
        net = blocks[0]
        self.input_size = int(net.get("width", 416))
        channels = [int(net.get("channels", 3))]
        strides = [1]
        self.layers = nn.ModuleList()
        self.heads: list[YoloHead] = []
        for block in blocks[1:]:
            kind, ch, stride = block["type"], channels[-1], strides[-1]
            if kind == "convolutional":
                layer = _conv_block(block, ch)
                ch, stride = int(block["filters"]), stride * int(block.get("stride", 1))
            elif kind == "maxpool":
                layer = _MaxPool(int(block["size"]), int(block.get("stride", 1)))
                stride *= int(block.get("stride", 1))
            elif kind == "upsample":
                layer = nn.Upsample(scale_factor=int(block.get("stride", 2)), mode="nearest")
                stride //= int(block.get("stride", 2))
            elif kind == "route":
                here = len(self.layers)
                sources = [int(s) for s in block["layers"].split(",")]
                sources = [s if s >= 0 else here + s for s in sources]
                layer = _Route(sources)
                ch, stride = sum(channels[s + 1] for s in sources), strides[sources[0] + 1]
            elif kind == "yolo":
                flat = [float(v) for v in block["anchors"].split(",")]
                pairs = list(zip(flat[0::2], flat[1::2]))
                mask = [int(m) for m in block["mask"].split(",")]
                layer = _Yolo([pairs[m] for m in mask], int(block["classes"]))
                expected = len(mask) * (5 + layer.num_classes)
                if ch != expected:
                    raise DetectorError(f"the convolution before a [yolo] layer has {ch} filters; "
                                        f"{len(mask)} anchors x (5 + {layer.num_classes}) needs {expected}")
                self.heads.append(YoloHead(tuple(layer.anchors), stride, layer.num_classes))
            else:
                raise DetectorError(f"darknet layer [{kind}] is not supported")
            self.layers.append(layer)
            channels.append(ch)
            strides.append(stride)
        self.class_names: list[str] = []

    @property
    def num_classes(self) -> int:
        return self.heads[0].num_classes

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor] = []
        raw: list[torch.Tensor] = []
        for layer in self.layers:
            if isinstance(layer, _Route):
                x = torch.cat([outputs[s] for s in layer.sources], dim=1)
            elif isinstance(layer, _Yolo):
                raw.append(x)  # the head's raw output: decoding is the learner's job
            else:
                x = layer(x)
            outputs.append(x)
        return raw

    def convolutions(self) -> list[nn.Sequential]:
        return [layer for layer in self.layers if isinstance(layer, nn.Sequential)]


def count_weight_values(model: Darknet) -> int:
    """How many float32 values the weights file must hold for ``model``."""
    total = 0
    for block in model.convolutions():
        conv = block[0]
        total += conv.weight.numel() + (4 if len(block) > 1 and isinstance(block[1], nn.BatchNorm2d) else 1) \
            * conv.out_channels
    return total


def load_darknet_weights(model: Darknet, path: str | pathlib.Path) -> int:
    """Fill ``model`` from a darknet .weights file; returns the number of values used (all, or an error)."""
    with open(path, "rb") as fh:
        major, minor, _revision = np.fromfile(fh, dtype=np.int32, count=3)
        np.fromfile(fh, dtype=np.int64 if major * 10 + minor >= 2 else np.int32, count=1)  # images seen
        values = torch.from_numpy(np.fromfile(fh, dtype=np.float32))
    need = count_weight_values(model)
    if values.numel() != need:
        raise DetectorError(f"{path} holds {values.numel():,} values; the cfg's network needs {need:,}. "
                            "The cfg and weights files do not belong together.")
    at = 0

    def take(t: torch.Tensor) -> None:
        nonlocal at
        t.data.copy_(values[at:at + t.numel()].view_as(t))
        at += t.numel()

    with torch.no_grad():
        for block in model.convolutions():
            conv = block[0]
            if len(block) > 1 and isinstance(block[1], nn.BatchNorm2d):
                bn = block[1]
                for t in (bn.bias, bn.weight, bn.running_mean, bn.running_var):
                    take(t)
            else:
                take(conv.bias)
            take(conv.weight)
    return at


def load_detector(name: str = "yolov3-tiny", path: str | None = None) -> Darknet:
    """The registered darknet detector, weights loaded and checked, in eval mode.

    >>> model = load_detector("yolov3-tiny")
    >>> [tuple(o.shape) for o in model(torch.zeros(1, 3, 416, 416))]
    [(1, 255, 13, 13), (1, 255, 26, 26)]
    """
    from .assets import get_asset, resolve

    asset = get_asset(name)
    if asset.kind != "detector":
        raise DetectorError(f"{asset.name!r} is a {asset.kind} asset, not a detector; try 'yolov3-tiny'.")
    files = resolve(asset, path=path, download=False)
    model = Darknet(parse_cfg(files["yolov3-tiny.cfg"].read_text()))
    used = load_darknet_weights(model, files["yolov3-tiny.weights"])
    if used != asset.meta["num_params"]:
        raise DetectorError(f"loaded {used:,} values; the registry says {asset.name} has {asset.meta['num_params']:,}")
    model.class_names = files["coco.names"].read_text().split("\n")[:model.num_classes]
    return model.eval()


def letterbox(image: torch.Tensor, size: int = 416, fill: float = 0.5) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """Resize a (3, H, W) image in [0, 1] to fit ``size``×``size`` keeping its aspect ratio, centred on grey.

    Returns the square image, the scale and the (left, top) padding, so boxes
    map back to the original with ``(box - pad) / scale``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one RGB image (3, H, W), got shape {tuple(image.shape)}")
    h, w = image.shape[1:]
    scale = min(size / h, size / w)
    nh, nw = round(h * scale), round(w * scale)
    resized = F.interpolate(image[None].float(), size=(nh, nw), mode="bilinear", align_corners=False)[0]
    out = torch.full((3, size, size), fill, dtype=resized.dtype)
    left, top = (size - nw) // 2, (size - nh) // 2
    out[:, top:top + nh, left:left + nw] = resized
    return out, scale, (left, top)


def head_inputs(model: Darknet, x: torch.Tensor) -> list[torch.Tensor]:
    """What each YOLO head's last (output) convolution receives: the features a new head is trained on.

    For YOLOv3-tiny at 416×416: (B, 512, 13, 13) and (B, 256, 26, 26). Everything
    before these is the backbone that transfer keeps frozen.
    """
    outputs: list[torch.Tensor] = []
    feats: list[torch.Tensor] = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, _Route):
            x = torch.cat([outputs[s] for s in layer.sources], dim=1)
        elif isinstance(layer, _Yolo):
            feats.append(outputs[i - 2])  # the input of the 1×1 convolution just before [yolo]
        else:
            x = layer(x)
        outputs.append(x)
    return feats


def rehead(model: Darknet, anchors: list[list[tuple[float, float]]], num_classes: int, seed: int = 0) -> Darknet:
    """Network surgery: each head's output convolution replaced by a fresh one for ``num_classes`` classes.

    ``anchors[k]`` are head k's new anchors (w, h) in input pixels; the new
    convolution has len(anchors[k]) × (5 + num_classes) filters. The rest of the
    network (the backbone) is shared with ``model``, not copied.
    """
    if len(anchors) != len(model.heads):
        raise DetectorError(f"the model has {len(model.heads)} heads; got anchors for {len(anchors)}")
    torch.manual_seed(seed)
    new = Darknet.__new__(Darknet)
    nn.Module.__init__(new)
    new.input_size, new.class_names = model.input_size, []
    layers, heads, k = list(model.layers), [], 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, _Yolo):
            old = layers[i - 1][0]
            layers[i - 1] = nn.Sequential(nn.Conv2d(old.in_channels, len(anchors[k]) * (5 + num_classes), 1))
            layers[i] = _Yolo([tuple(a) for a in anchors[k]], num_classes)
            heads.append(YoloHead(tuple(tuple(float(v) for v in a) for a in anchors[k]), model.heads[k].stride,
                                  num_classes))
            k += 1
    new.layers = nn.ModuleList(layers)
    new.heads = heads
    return new


def output_convolutions(model: Darknet) -> list[nn.Conv2d]:
    """Each head's output convolution, in head order (what :func:`rehead` replaced)."""
    return [model.layers[i - 1][0] for i, layer in enumerate(model.layers) if isinstance(layer, _Yolo)]
