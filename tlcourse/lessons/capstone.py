"""Notebook 12, the capstone: transfer learning done the way practitioners do it.

- :func:`build_classifier`: MobileNetV2 with a new head, its preprocessing inside, only the last
  blocks trainable (BatchNorm statistics kept at their ImageNet values);
- :func:`train_val_split`, :func:`augmentation`, :func:`finder_batches`: the data side;
- :func:`train_with_early_stopping`: the epoch loop (``tlcourse.train.fit``, one epoch at a time, with
  a one-cycle schedule) that asks *your* stopping rule after every epoch and writes the best
  checkpoint atomically;
- :func:`plot_lr_curve`, :func:`plot_val_curves`, :func:`top_losses`, :func:`paired_summary`;
- :func:`save_model`, :func:`load_model`, :func:`predict_image`: a model file with its preprocessing;
- :func:`backbone_zoo`: parameters, FLOPs, CPU latency and published ImageNet top-1 of the source
  article's backbones and the offline ones.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import pathlib
import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._io import atomic_open
from ..backbones import BackboneTransform, count_parameters, load_imagenet_classifier
from ..data import ImageDataset, stratified_indices
from ..device import one_thread, seed_everything
from ..train import History, evaluate, fit, load_checkpoint, make_loader, predict, save_checkpoint

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- model

class _Pool(nn.Module):
    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def build_classifier(num_classes: int, image_size: int, train_blocks: int = 2, pretrained: bool = True,
                     seed: int = 0) -> nn.Sequential:
    """``Sequential(preprocess, features, pool, head)``: course images in [0, 1] in, logits out.

    MobileNetV2's body is frozen except its last ``train_blocks`` blocks; the new head is seeded.
    BatchNorm layers keep their ImageNet running statistics (eval mode) even while training.
    """
    if pretrained:
        net = _pretrained_mobilenet()
    else:
        import torchvision
        net = torchvision.models.mobilenet_v2(weights=None)
    features = copy.deepcopy(net.features)
    for i, block in enumerate(features):
        for p in block.parameters():
            p.requires_grad_(i >= len(features) - train_blocks)
    torch.manual_seed(seed)
    model = nn.Sequential(BackboneTransform(image_size, IMAGENET_MEAN, IMAGENET_STD), features, _Pool(),
                          nn.Linear(net.last_channel, num_classes))
    _keep_bn_eval(model)
    return model


_CACHE: dict = {}


def _pretrained_mobilenet() -> nn.Module:
    if "mobilenet_v2" not in _CACHE:
        _CACHE["mobilenet_v2"] = load_imagenet_classifier("mobilenet_v2")[0]
    return _CACHE["mobilenet_v2"]


def _keep_bn_eval(model: nn.Module) -> None:
    """BatchNorm stays in eval mode whatever ``model.train()`` says: small batches of 28-px clothes
    would otherwise overwrite its ImageNet statistics (notebook 02, section 5)."""
    def train(self, mode: bool = True):
        nn.Module.train(self, mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self
    model.train = train.__get__(model)


# ---------------------------------------------------------------- data

def train_val_split(dataset: ImageDataset, val_fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """A stratified split of ``dataset`` into (train, validation); the test set stays untouched."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}: give a fraction between 0 and 1, e.g. 0.2")
    n_val = round(len(dataset) * val_fraction)
    val_idx = stratified_indices(dataset.labels, n=n_val, seed=seed)
    train_idx = np.setdiff1d(np.arange(len(dataset)), val_idx)
    return dataset.subset(train_idx), dataset.subset(np.sort(val_idx))


def augmentation(image_size: int = 28):
    """torchvision v2 transforms for 28-px clothes: small shifts and zooms, and a horizontal flip
    (a mirrored shirt is still a shirt; a mirrored digit would not be a digit)."""
    import torchvision.transforms.v2 as T
    return T.Compose([T.RandomHorizontalFlip(),
                      T.RandomAffine(degrees=8, translate=(0.08, 0.08), scale=(0.9, 1.1))])


def finder_batches(dataset, batch_size: int, n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` shuffled training batches, materialised once, for the learning-rate range test."""
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, seed=seed, device=torch.device("cpu"))
    out = []
    while len(out) < n:
        for batch in loader:
            out.append((batch[0], batch[1]))
            if len(out) == n:
                break
    return out


# ---------------------------------------------------------------- training

def train_with_early_stopping(model: nn.Module, train_set, val_set, *, stop_rule: Callable, max_epochs: int,
                              patience: int, lr: float, batch_size: int, checkpoint: str | pathlib.Path,
                              seed: int = 0, monitor: str = "val_loss") -> tuple[History, int]:
    """Train one epoch at a time with :func:`tlcourse.train.fit` and a one-cycle schedule over
    ``max_epochs``; after each epoch ask ``stop_rule(scores, patience, mode)`` (your exercise 3)
    for ``(best_epoch, stop)``, write the checkpoint atomically when the newest epoch is the best,
    stop when told, and finally load the best checkpoint back. Returns (history, best_epoch)."""
    seed_everything(seed)
    loader = make_loader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(val_set, batch_size=256)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=max_epochs,
                                                    steps_per_epoch=len(loader))
    mode = "min" if "loss" in monitor else "max"
    history, best_epoch = History(), -1
    with one_thread():
        for epoch in range(max_epochs):
            fit(model, loader, val_loader, epochs=1, optimizer=optimizer, scheduler=scheduler, progress=False,
                history=history)
            best_epoch, stop = stop_rule(list(history[monitor]), patience, mode)
            if not 0 <= best_epoch <= epoch:
                raise RuntimeError(f"your rule chose epoch {best_epoch} after epoch {epoch}: a stopping rule must "
                                   "name an epoch it was shown, never one later than the last")
            if best_epoch == epoch:
                save_checkpoint(checkpoint, model=model.state_dict(), epoch=epoch, score=history[monitor][epoch])
            if stop:
                break
        state = load_checkpoint(checkpoint)
    if state["epoch"] != best_epoch:
        raise RuntimeError(f"the checkpoint holds epoch {state['epoch']} but your rule now chooses epoch "
                           f"{best_epoch}, after calling an earlier epoch the best one: a rule's best epoch "
                           "can only move to a newer epoch")
    model.load_state_dict(state["model"])
    return history, best_epoch


def test_accuracy(model: nn.Module, dataset, batch_size: int = 256) -> float:
    with one_thread():
        return evaluate(model, make_loader(dataset, batch_size=batch_size))["acc"]


def paired_summary(a: Sequence[float], b: Sequence[float], name_a: str, name_b: str) -> str:
    """Mean ± std of each arm over seeds, the mean paired difference, and how many seeds ``b`` won."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    return (f"{name_a}: {a.mean():.3f} ± {a.std():.3f}   {name_b}: {b.mean():.3f} ± {b.std():.3f}   "
            f"paired difference {d.mean():+.3f} ± {d.std():.3f}; {name_b} won {int((d > 0).sum())} of {len(d)} seeds")


# ---------------------------------------------------------------- figures and error analysis

def plot_lr_curve(lrs: Sequence[float], losses: Sequence[float], chosen: float | None = None):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(lrs, losses, marker=".")
    ax.set_xscale("log"), ax.set_xlabel("learning rate"), ax.set_ylabel("training loss")
    if chosen is not None:
        ax.axvline(chosen, color="tab:red", ls="--", label=f"chosen {chosen:.1e}")
        ax.legend()
    ax.set_title("learning-rate range test")
    fig.tight_layout()
    return fig


def plot_val_curves(histories: dict[str, History], best: dict[str, int], key: str = "val_loss"):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, h in histories.items():
        line, = ax.plot(range(len(h[key])), h[key], marker=".", label=name)
        ax.plot([best[name]], [h[key][best[name]]], "o", ms=10, mfc="none", color=line.get_color())
    ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.set_title("validation curve (circle: kept checkpoint)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def top_losses(model: nn.Module, dataset, k: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the ``k`` test images with the highest loss, with their predictions and losses."""
    with one_thread():
        logits = predict(model, make_loader(dataset, batch_size=256))
    losses = F.cross_entropy(logits, torch.as_tensor(dataset.labels), reduction="none").numpy()
    order = np.argsort(-losses)[:k]
    return order, logits.argmax(1).numpy()[order], losses[order]


def confusion_pairs(y_true, y_pred, classes: Sequence[str], k: int = 3) -> list[tuple[str, str, int]]:
    """The ``k`` most frequent (true, predicted) confusions."""
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    np.fill_diagonal(cm, 0)
    flat = np.argsort(-cm, axis=None)[:k]
    return [(classes[i], classes[j], int(cm[i, j])) for i, j in zip(*np.unravel_index(flat, cm.shape))]


# ---------------------------------------------------------------- saving and predicting

def save_model(path: str | pathlib.Path, model: nn.Sequential, classes: Sequence[str]) -> pathlib.Path:
    """Write the weights *and* what it takes to use them (architecture, input size, normalisation,
    class names) to one file, atomically. Reload with :func:`load_model`, no pickled code involved."""
    pre = model[0]
    state = {"arch": "mobilenet_v2", "state_dict": model.state_dict(), "num_classes": model[-1].out_features,
             "image_size": pre.size, "mean": pre.mean.flatten().tolist(), "std": pre.std.flatten().tolist(),
             "classes": list(classes)}
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)
    return pathlib.Path(path)


def load_model(path: str | pathlib.Path) -> tuple[nn.Sequential, list[str]]:
    """Rebuild the model saved by :func:`save_model` (``weights_only=True``: a model file cannot run code)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the cell that saves the model first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("arch") != "mobilenet_v2":
        raise ValueError(f"{path} holds a {state.get('arch')!r} model; load_model rebuilds MobileNetV2 only")
    model = build_classifier(state["num_classes"], state["image_size"], pretrained=False)
    model[0] = BackboneTransform(state["image_size"], state["mean"], state["std"])
    model.load_state_dict(state["state_dict"])
    return model.eval(), state["classes"]


def default_image_path() -> pathlib.Path:
    """A Fashion-MNIST image file shipped with foolbox (an ankle boot), the stand-in for your own photo."""
    from ..assets import resolve
    found = resolve("imagenet-samples")  # foolbox's data folder, already verified by sha256
    path = pathlib.Path(found[sorted(found.files)[0]]).parent / "fashionMNIST_00_9.png"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; set MY_IMAGE to a photo of your own instead")
    return path


def load_image(path: str | pathlib.Path, invert: bool | None = None) -> torch.Tensor:
    """A photo as a (1, 28, 28) float tensor like Fashion-MNIST: grey, the object light on a dark
    background (``invert=None`` inverts when the border is lighter than the centre)."""
    from PIL import Image
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image at {path}; set MY_IMAGE to the path of a .png or .jpg file")
    img = Image.open(path).convert("L").resize((28, 28))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]
    if invert is None:
        border = torch.cat([x[0, 0], x[0, -1], x[0, :, 0], x[0, :, -1]]).mean()
        invert = bool(border > x[0, 7:21, 7:21].mean())
    return 1 - x if invert else x


@torch.no_grad()
def predict_image(model: nn.Module, image: torch.Tensor, classes: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """Top-``k`` (class, probability) for one image."""
    probs = torch.softmax(model.eval()(image[None]), 1)[0]
    top = probs.topk(k)
    return [(classes[i], float(p)) for p, i in zip(top.values, top.indices)]


# ---------------------------------------------------------------- the backbone zoo

ZOO = (  # (name, builder: torchvision's or "timm:<name>", weights enum, input size for FLOPs and latency)
    ("VGG-16", "vgg16", "VGG16_Weights.IMAGENET1K_V1", 64),
    ("ResNet-18", "resnet18", "ResNet18_Weights.IMAGENET1K_V1", 64),
    ("ResNet-50", "resnet50", "ResNet50_Weights.IMAGENET1K_V2", 64),
    ("Inception-v3", "inception_v3", "Inception_V3_Weights.IMAGENET1K_V1", 80),
    ("Xception", "timm:legacy_xception", None, 80),
    ("MobileNetV2", "mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1", 64),
    ("EfficientNet-Lite0", "efficientnet_lite0", None, 64),
)


# where the registry's top-1 comes from, for weights that carry no metadata offline
TOP1_SOURCE = {"Xception": "Chollet 2017, Table 1", "EfficientNet-Lite0": "Google's EfficientNet-Lite README"}
_REGISTRY_NAME = {"Xception": "xception", "EfficientNet-Lite0": "efficientnet_lite0"}


def _zoo_model(builder: str) -> nn.Module:
    if builder.startswith("timm:"):
        import timm  # optional: the caller reports its absence
        return timm.create_model(builder[5:], pretrained=False)  # with its 1000-class head, like the others
    if builder == "efficientnet_lite0":
        from ..backbones import _efficientnet_lite0
        return _efficientnet_lite0(pretrained=False)
    import torchvision.models as tvm
    extra = {"aux_logits": False, "init_weights": False} if builder == "inception_v3" else {}
    return getattr(tvm, builder)(weights=None, **extra)


def flops(model: nn.Module, size: int) -> int:
    """Forward FLOPs for one image at ``size`` px, counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def latency_ms(model: nn.Module, size: int, repeats: int = 3) -> float:
    """Median wall time of one forward pass at batch 1, one CPU thread, after one warm-up."""
    x = torch.zeros(1, 3, size, size)
    times = []
    with one_thread("cpu"), torch.no_grad():
        model.eval()(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def published_top1(name: str, weights_enum: str | None) -> float | None:
    """ImageNet top-1 (%) from the weights' metadata, offline: torchvision's enum, else the
    registry's entry (its source in ``TOP1_SOURCE``)."""
    if weights_enum is None:
        from ..assets import get_asset
        return get_asset(_REGISTRY_NAME[name]).meta["imagenet_acc1"] if name in _REGISTRY_NAME else None
    import torchvision.models as tvm
    enum, member = weights_enum.split(".")
    return float(getattr(tvm, enum)[member].meta["_metrics"]["ImageNet-1K"]["acc@1"])


def backbone_zoo(skip: Sequence[str] = (), repeats: int = 3, probe: dict[str, float] | None = None) -> list[dict]:
    """One row per backbone: what was measured in this run and what is published.

    Models are built *without* weights (the shapes and costs do not depend on them). Xception
    is timm's (``legacy_xception``); where timm is not installed its row says so and the rest
    are measured. ``probe`` adds the linear-probe accuracies measured in the notebook for the
    backbones that have offline weights.
    """
    rows = []
    for name, builder, enum, size in ZOO:
        row = {"backbone": name, "input px": size, "params (M)": None, "GFLOPs": None, "latency ms": None,
               "ImageNet top-1 (published)": None, "probe acc (this run)": (probe or {}).get(name), "note": ""}
        if name == "Xception":
            row["note"] = f"top-1 from {TOP1_SOURCE[name]}"
        if builder.startswith("timm:") and importlib.util.find_spec("timm") is None:
            row["ImageNet top-1 (published)"] = published_top1(name, enum)
            row["note"] = "not measured: needs timm (pip install timm)"
            rows.append(row)
            continue
        row["ImageNet top-1 (published)"] = published_top1(name, enum)
        if name in skip:
            row["note"] = "; ".join(filter(None, ["skipped in this profile", row["note"]]))
            rows.append(row)
            continue
        model = _zoo_model(builder)
        row["params (M)"] = count_parameters(model) / 1e6
        row["GFLOPs"] = flops(model, size) / 1e9
        row["latency ms"] = latency_ms(model, size, repeats)
        rows.append(row)
        del model
    return rows


def zoo_table(rows: list[dict]) -> str:
    from ..tables import text_table
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)
    header = ["backbone", "params M", f"GFLOPs", "ms (b=1)", "top-1 % (published)", "probe acc", "note"]
    body = [[r["backbone"], fmt(r["params (M)"], ".1f"), fmt(r["GFLOPs"], ".3f") + f" @{r['input px']}px"
             if r["GFLOPs"] is not None else "-", fmt(r["latency ms"], ".1f"),
             fmt(r["ImageNet top-1 (published)"], ".1f"), fmt(r["probe acc (this run)"], ".3f"), r["note"]]
            for r in rows]
    return text_table(header, body)


# ---------------------------------------------------------------- the capstone report

def project_summary(project: dict) -> str:
    """The report's numbers, from the ``project`` dict: each arm's mean ± std over seeds, and the
    paired comparison of the transfer result with the baseline and with each ablation."""
    lines = [f"backbone={project['backbone']}  strategy={project['strategy']}  dataset={project['dataset']}  "
             f"seeds={list(project['seeds'])}"]
    arms = {"baseline": project["baseline"], "transfer": project["transfer"],
            **{f"ablation: {k}": v for k, v in project["ablation"].items()}}
    for name, accs in arms.items():
        a = np.asarray(accs, float)
        lines.append(f"  {name:<34} {a.mean():.3f} ± {a.std():.3f}   per seed {np.round(a, 3).tolist()}")
    lines.append("  " + paired_summary(project["baseline"], project["transfer"], "baseline", "transfer"))
    for k, v in project["ablation"].items():
        lines.append("  " + paired_summary(v, project["transfer"], k, "transfer"))
    return "\n".join(lines)
