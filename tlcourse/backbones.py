"""Pretrained backbones behind one call: ``load_backbone(name)``.

A backbone is the pretrained network without its classification head. It
maps a preprocessed image batch (B, 3, H, W) to features (B, feature_dim).
``transforms`` turns course images (float in [0, 1], 1 or 3 channels, any
size) into what the backbone was trained on.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .assets import REGISTRY, AssetError, get_asset, is_online, resolve, seed_torch_hub

OFFLINE_VISION = ("mobilenet_v2", "efficientnet_lite0")


class BackboneTransform(nn.Module):
    """Resize, repeat grey to RGB, and normalise; works on one image or a batch.

    Accepts a float tensor in [0, 1] shaped (C, H, W) or (B, C, H, W) with
    C in {1, 3}, or a PIL image. ``crop`` first resizes the short side to
    ``size * 256 / 224`` and centre-crops, as for ImageNet photos.
    """

    def __init__(self, size: int, mean, std, crop: bool = False):
        super().__init__()
        self.size, self.crop = int(size), bool(crop)
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    def forward(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):  # a PIL image
            from torchvision.transforms.functional import pil_to_tensor
            x = pil_to_tensor(x.convert("RGB")).float() / 255.0
        single = x.ndim == 3
        x = x.unsqueeze(0) if single else x
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.crop:
            short = round(self.size * 256 / 224)
            h, w = x.shape[-2:]
            scale = short / min(h, w)
            x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear",
                              antialias=True, align_corners=False)
            top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        elif x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        x = (x - self.mean) / self.std
        return x[0] if single else x

    def extra_repr(self) -> str:  # part of the feature-cache key
        return f"size={self.size}, crop={self.crop}, mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


@dataclass
class Backbone:
    """What :func:`load_backbone` returns. Unpacks as ``model, feature_dim, transforms``."""

    model: nn.Module
    feature_dim: int
    transforms: BackboneTransform
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.model, self.feature_dim, self.transforms))


class _PooledFeatures(nn.Module):
    """conv feature map -> global average pool -> (B, C)."""

    def __init__(self, body: nn.Module, extract=None):
        super().__init__()
        self.body = body
        self._extract = extract

    def forward(self, x):
        fmap = self._extract(x) if self._extract else self.body(x)
        return torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)


def _torchvision_model(name: str, pretrained: bool, path=None) -> nn.Module:
    import torchvision.models as tvm
    asset = get_asset(name)
    builder = getattr(tvm, asset.meta["builder"])
    extra = {"aux_logits": True, "init_weights": False} if name == "inception_v3" else {}
    model = builder(weights=None, **extra)
    if pretrained:
        if name == "mobilenet_v2" and path is None:
            seed_torch_hub(name)  # the weights= API now works offline, too
        state = torch.load(resolve(asset, path=path).path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


def _efficientnet_lite0(pretrained: bool, path=None) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        if pretrained:
            return EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=str(resolve("efficientnet_lite0", path=path).path))
        return EfficientNet.from_name("efficientnet-lite0")


def load_imagenet_classifier(name: str = "mobilenet_v2", path=None) -> tuple[nn.Module, BackboneTransform, tuple]:
    """The full pretrained ImageNet classifier, its photo transforms and the 1,000 class names."""
    from torchvision.models import MobileNet_V2_Weights
    asset = get_asset(name)
    model = _efficientnet_lite0(True, path) if asset.name == "efficientnet_lite0" else _torchvision_model(asset.name, True, path)
    tf = BackboneTransform(224, asset.meta["mean"], asset.meta["std"], crop=True)
    return model.eval(), tf, tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def load_backbone(name: str = "mobilenet_v2", pretrained: bool = True, image_size: int = 224,
                  path=None, seed: int | None = None) -> Backbone:
    """A pretrained network without its head, its feature dimension and its transforms.

    ``pretrained=False`` gives the same architecture with random weights (a control); with
    ``seed`` those weights are the same in every run, whatever ran before, and the global
    random state is left as it was. Without ``seed`` they are drawn from the global generator.

    Offline: ``mobilenet_v2`` and ``efficientnet_lite0``. Online (or once their
    weights are cached): ``resnet18``, ``resnet50``, ``vgg16``, ``inception_v3``,
    and ``xception`` (timm, a requirement, builds it; its weights are online only).

    >>> model, dim, tf = load_backbone("mobilenet_v2", image_size=64)
    >>> dim
    1280
    """
    asset = get_asset(name)
    if asset.kind != "vision":
        raise ValueError(f"{name!r} is a {asset.kind}, not a vision backbone; "
                         f"vision backbones: {', '.join(n for n, a in REGISTRY.items() if a.kind == 'vision')}")
    if seed is not None:
        if pretrained:
            raise ValueError("seed= sets the random weights of pretrained=False; pretrained weights need no seed")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_backbone(name, False, image_size, path)
    if asset.name == "mobilenet_v2":
        net = _torchvision_model(asset.name, pretrained, path)
        model = _PooledFeatures(net.features)
    elif asset.name == "efficientnet_lite0":
        net = _efficientnet_lite0(pretrained, path)
        model = _PooledFeatures(net, extract=net.extract_features)
        net._fc = nn.Identity()  # unused by extract_features; drop its 1.28M params
    elif asset.name in ("resnet18", "resnet50", "inception_v3"):
        model = _torchvision_model(asset.name, pretrained, path)
        model.fc = nn.Identity()
        if asset.name == "inception_v3":
            model.aux_logits, model.AuxLogits = False, None
    elif asset.name == "vgg16":
        model = _torchvision_model(asset.name, pretrained, path)
        model.classifier[-1] = nn.Identity()
    elif asset.name == "xception":
        model = _timm_xception(pretrained)
    else:  # pragma: no cover - every vision entry is handled above
        raise AssertionError(asset.name)
    tf = BackboneTransform(image_size, asset.meta["mean"], asset.meta["std"])
    return Backbone(model.eval(), asset.meta["feature_dim"], tf, asset.name, dict(asset.meta))


def _timm_xception(pretrained: bool) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise AssetError("xception needs timm: pip install timm. "
                         f"Offline alternatives: {', '.join(OFFLINE_VISION)}.") from None
    if pretrained and not is_online():
        raise AssetError("xception's weights come from timm's hub and this machine is offline. "
                         f"Offline alternatives: {', '.join(OFFLINE_VISION)}.")
    return timm.create_model("legacy_xception", pretrained=pretrained, num_classes=0)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
