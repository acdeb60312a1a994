"""Notebook 02, fine-tuning: the helpers only that notebook uses.

- :func:`body_blocks`: a pretrained body as a list of blocks, input to output
  (MobileNetV2, EfficientNet-Lite0, or any ``nn.Sequential`` body);
- :func:`with_input_transform`: a network that takes course images directly;
- :func:`trainable_summary`: which blocks train, with parameter counts;
- :func:`keep_bn_eval`: BatchNorm in eval mode for frozen blocks (or for
  all blocks), whatever ``model.train()`` says;
- :func:`bn_running_stats` / :func:`bn_drift`: how far BatchNorm's running
  statistics move from their pretrained values;
- :func:`stage_schedule`, :func:`train_schedule`: a training runner that calls *your* unfreezing
  function at the start of each stage (gradual unfreezing);
- :func:`run_comparison`, :func:`seed_summary`, :func:`plot_comparison`:
  several methods over several seeds, as a table and a plot;
- :func:`imagenet_top1`: source-task accuracy of a body with the original
  ImageNet classifier reattached (catastrophic forgetting);
- :func:`trainable_layers_explorer` (:class:`UnfreezingProfiler`): trainable
  parameters and measured training speed as blocks unfreeze from the output end.

The graded exercises of the notebook (replacing the head, building parameter
groups, unfreezing the last k blocks) are deliberately *not* here: the
runners below take your functions as arguments.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..assets.registry import IMAGENET_MEAN, IMAGENET_STD
from ..backbones import BackboneTransform
from ..device import pick_device
from ..tables import mean_std, text_table
from ..train import History, evaluate, fit, make_loader, run_steps
from ..widgets import _use_widgets, slider_explorer


# ---------------------------------------------------------------- structure

def body_blocks(model: nn.Module) -> list[nn.Module]:
    """The body of ``model`` as a list of blocks, from the input end to the output end.

    Understands torchvision's MobileNetV2 (``model.features``: 19 blocks),
    :func:`~tlcourse.load_backbone`'s wrappers, EfficientNet-Lite0 (stem,
    16 MBConv blocks, head conv), a model wrapped by
    :func:`with_input_transform`, and any ``nn.Sequential`` body. The head
    (``classifier`` / ``_fc``) is not a block.
    """
    if isinstance(model, nn.Sequential) and any(isinstance(m, BackboneTransform) for m in model):
        rest = [m for m in model if not isinstance(m, BackboneTransform)]
        if len(rest) == 1:
            return body_blocks(rest[0])
        model = nn.Sequential(*rest)
    if hasattr(model, "_blocks") and hasattr(model, "_conv_stem"):  # EfficientNet-Lite
        return [nn.ModuleList([model._conv_stem, model._bn0]), *model._blocks,
                nn.ModuleList([model._conv_head, model._bn1])]
    if hasattr(model, "features") and isinstance(model.features, nn.Sequential):  # torchvision
        return list(model.features)
    if hasattr(model, "body"):  # load_backbone's pooled wrapper
        return body_blocks(model.body)
    if isinstance(model, nn.Sequential):
        return list(model)
    raise TypeError(f"body_blocks does not know how to split a {type(model).__name__} into blocks; "
                    "pass an nn.Sequential body or a MobileNetV2/EfficientNet-Lite0 model.")


def with_input_transform(net: nn.Module, image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> nn.Sequential:
    """``nn.Sequential(resize+normalise, net)``: feeds course images (1 or 3 channels, [0, 1]) to ``net``."""
    return nn.Sequential(BackboneTransform(image_size, mean, std), net)


def _n(params: Iterable[torch.Tensor], trainable_only: bool = False) -> int:
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)


def trainable_summary(model: nn.Module, head: nn.Module | None = None, blocks: Sequence[nn.Module] | None = None,
                      show: bool = True) -> list[dict[str, Any]]:
    """One row per block (and the head): parameters, trainable parameters, BatchNorm mode.

    Prints a compact table when ``show`` (frozen blocks as ``.``, trainable as ``#``).
    """
    blocks = list(blocks) if blocks is not None else body_blocks(model)
    parts = [(f"block {i}", b) for i, b in enumerate(blocks)]
    if head is not None:
        parts.append(("head", head))
    rows = []
    for name, mod in parts:
        bns = [m for m in mod.modules() if isinstance(m, _BatchNorm)]
        rows.append(dict(name=name, params=_n(mod.parameters()), trainable=_n(mod.parameters(), True),
                         bn_train=sum(m.training for m in bns), bn=len(bns)))
    if show:
        total, train = _n(model.parameters()), _n(model.parameters(), True)
        bar = "".join("#" if r["trainable"] == r["params"] and r["params"] else
                      ("+" if r["trainable"] else ".") for r in rows)
        print(f"trainable {train:,} of {total:,} parameters ({train / max(total, 1):.1%})")
        print(f"blocks input -> output: [{bar}]   (# trainable, + partly, . frozen)")
        for r in rows:
            if r["trainable"]:
                print(f"  {r['name']:<9} {r['trainable']:>10,} / {r['params']:>10,} trainable; "
                      f"BatchNorm in train mode: {r['bn_train']}/{r['bn']}")
    return rows


def set_trainable(module: nn.Module, flag: bool) -> nn.Module:
    """``requires_grad_(flag)`` on every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(flag)
    return module


# ---------------------------------------------------------------- BatchNorm

def _bn_pre_hook(module: _BatchNorm, _inputs) -> None:
    if not module.training:
        return
    frozen = module.weight is None or not module.weight.requires_grad
    if module._tl_bn_eval == "all" or frozen:
        module.train(False)


def keep_bn_eval(model: nn.Module, only_frozen: bool = True) -> nn.Module:
    """Keep BatchNorm layers in eval mode (running statistics fixed) even when the model trains.

    ``model.train()`` (which ``fit`` calls every epoch) puts every BatchNorm back
    into training mode, where it normalises with the current batch's
    statistics and overwrites its running statistics. A forward pre-hook puts
    a BatchNorm back into eval mode

    - ``only_frozen=True``: when its weight has ``requires_grad=False``, so
      frozen blocks stay exactly as pretrained, and a block unfrozen later
      trains normally from the next ``model.train()``;
    - ``only_frozen=False``: always: the pretrained statistics are kept
      everywhere, while the BatchNorm scale and shift still train. The usual
      choice when batches are small.

    Calling it again changes the policy; returns ``model``.
    """
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            if not hasattr(m, "_tl_bn_eval"):
                m.register_forward_pre_hook(_bn_pre_hook)
            m._tl_bn_eval = "frozen" if only_frozen else "all"
    return model


def bn_running_stats(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A copy of every BatchNorm's ``(running_mean, running_var)``, by module name."""
    return {n: (m.running_mean.detach().clone(), m.running_var.detach().clone())
            for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.running_mean is not None}


def bn_drift(before: Mapping[str, tuple], after: Mapping[str, tuple]) -> float:
    """Mean over BatchNorm layers of ``|mean_after - mean_before| / sqrt(var_before)``: 0 means no drift."""
    d = [((after[k][0] - m0).abs() / (v0 + 1e-5).sqrt()).mean().item() for k, (m0, v0) in before.items()]
    return float(np.mean(d)) if d else 0.0


@torch.no_grad()
def forward_in_train_mode(model: nn.Module, data, batch_size: int, batches: int, seed: int = 0) -> None:
    """Run ``batches`` shuffled batches through ``model`` in training mode without gradients.

    No weight changes, but every BatchNorm in training mode updates its
    running statistics: what happens to a "frozen" body left in train mode.
    """
    was = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.train()
    for i, (x, _) in enumerate(make_loader(data, batch_size=batch_size, shuffle=True, seed=seed,
                                           device=torch.device("cpu"))):
        if i >= batches:
            break
        model(x.to(device))
    model.train(was)


# ---------------------------------------------------------------- training runners

def stage_schedule(epochs: int, ks: Sequence[int]) -> list[int]:
    """Spread unfreezing stages over ``epochs``: ``stage_schedule(3, (0, 5, 19)) == [0, 5, 19]``.

    Stage ``i`` (unfreeze the last ``ks[i]`` blocks) covers an equal share of the
    epochs, earlier stages first; returns the ``k`` to use at each epoch.
    """
    if epochs < 1 or not ks:
        raise ValueError("need at least one epoch and one stage")
    return [int(ks[min(len(ks) - 1, e * len(ks) // epochs)]) for e in range(epochs)]


def train_schedule(model: nn.Module, train_data, test_data, *, optimizer: torch.optim.Optimizer,
                   epochs: int, batch_size: int = 32, seed: int = 0,
                   on_epoch: Callable[[int], Any] | None = None, device=None) -> dict[str, Any]:
    """Train ``model`` for ``epochs`` with ``optimizer``; call ``on_epoch(epoch)`` before each epoch.

    ``on_epoch`` is where a schedule acts, e.g. gradual unfreezing:
    ``on_epoch=lambda e: unfreeze_last(blocks, schedule[e], optimizer, lr)``.
    Returns ``{"acc", "train_acc", "seconds", "history"}`` (test accuracy after the last epoch).
    """
    device = torch.device(device) if device is not None else None
    loader = make_loader(train_data, batch_size=batch_size, shuffle=True, seed=seed, device=device)
    history = History()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        _one_epoch(model, loader, optimizer, history, device)
    seconds = time.perf_counter() - t0
    acc = evaluate(model, make_loader(test_data, batch_size=256, device=device), device=device)["acc"]
    return {"acc": acc, "train_acc": history["train_acc"][-1], "seconds": seconds, "history": history}


def _one_epoch(model, loader, optimizer, history, device) -> None:
    h = fit(model, loader, epochs=1, optimizer=optimizer, device=device, progress=False)
    for k, v in h.items():
        history.log(**{k: v[-1]})


def train_head_on_features(head: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor,
                           test_x: torch.Tensor, test_y: torch.Tensor, *, epochs: int, lr: float,
                           batch_size: int = 32, seed: int = 0, device=None) -> dict[str, Any]:
    """Head-only training on cached features: the same head, epochs, batches and LR as a frozen-body run.

    With the body frozen and in eval mode its output is a fixed function of the
    image, so training the head on cached features is the same computation,
    minus the body's forward passes.
    """
    from torch.utils.data import TensorDataset
    device = torch.device(device) if device is not None else None
    loader = make_loader(TensorDataset(train_x, train_y), batch_size=batch_size, shuffle=True, seed=seed,
                         device=device)
    t0 = time.perf_counter()
    h = fit(head, loader, epochs=epochs, lr=lr, device=device, progress=False)
    seconds = time.perf_counter() - t0
    acc = evaluate(head, make_loader(TensorDataset(test_x, test_y), batch_size=512, device=device),
                   device=device)["acc"]
    return {"acc": acc, "train_acc": h["train_acc"][-1], "seconds": seconds, "history": h}


def run_comparison(methods: Mapping[str, Callable[[int], Mapping[str, Any]]], seeds: Sequence[int],
                   verbose: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Run each ``methods[name](seed)`` for every seed; returns ``{name: [result per seed]}``.

    Each method returns a dict with at least ``acc`` and ``seconds``; any other
    numeric entries (``train_acc``, ``imagenet_top1``) appear in the table.
    """
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
    for seed in seeds:
        for name, method in methods.items():
            r = dict(method(seed))
            results[name].append(r)
            if verbose:
                print(f"seed {seed}  {name:<22} test acc {r['acc']:.3f}  ({r['seconds']:.1f} s)")
    return results


def _numeric_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    order = ["acc", "train_acc", "imagenet_top1", "seconds"]
    return [k for k in order if k in keys] + [k for k in keys if k not in order]


def seed_summary(results: Mapping[str, Sequence[Mapping[str, Any]]], show: bool = True) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of every numeric entry, one row per method (printed as a table)."""
    table, keys = [], []
    for name, rows in results.items():
        row: dict[str, Any] = {"method": name, "seeds": len(rows)}
        for k in _numeric_keys(rows):
            row[k] = mean_std([r[k] for r in rows])
            if k not in keys:
                keys.append(k)
        table.append(row)
    order = ("acc", "train_acc", "imagenet_top1", "seconds")
    keys = [k for k in order if k in keys] + [k for k in keys if k not in order]
    if show and table:
        def cell(row, k):
            if k not in row:
                return "-"
            m, sd = row[k]
            return f"{m:.1f} ± {sd:.1f}" if k == "seconds" else f"{m:.3f} ± {sd:.3f}"
        print(text_table(["method", *keys, "seeds"], [[r["method"], *(cell(r, k) for k in keys), r["seeds"]]
                                                       for r in table]))
    return table


def plot_comparison(results: Mapping[str, Sequence[Mapping[str, Any]]], chance: float | None = None,
                    title: str = ""):
    """Test accuracy (bars: mean; dots: seeds) and training time per method."""
    import matplotlib.pyplot as plt
    names = list(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    pos = np.arange(len(names))
    for ax, key, label in ((ax1, "acc", "test accuracy"), (ax2, "seconds", "training time (s)")):
        vals = [np.array([r[key] for r in results[n]], dtype=float) for n in names]
        ax.barh(pos, [v.mean() for v in vals], color="#90caf9", edgecolor="#1565c0")
        for i, v in enumerate(vals):
            ax.plot(v, np.full(len(v), i), "o", color="#0d47a1", ms=4)
        ax.set_yticks(pos, names if ax is ax1 else [""] * len(names))
        ax.invert_yaxis()
        ax.set_xlabel(label)
    if chance is not None:
        ax1.axvline(chance, ls="--", color="grey", lw=1)
        ax1.text(chance, len(names) - 0.5, " chance", color="grey", va="bottom")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- forgetting

@torch.no_grad()
def imagenet_top1(net: nn.Module, imagenet_classifier: nn.Module, photos: torch.Tensor,
                  labels: Sequence[int]) -> float:
    """ImageNet top-1 of ``net``'s body with ``imagenet_classifier`` reattached, on preprocessed ``photos``.

    ``net`` is a (possibly fine-tuned) torchvision MobileNetV2 whose
    ``classifier`` may have been replaced; it is copied, not changed.
    """
    probe = copy.deepcopy(net).cpu().eval()
    probe.classifier = copy.deepcopy(imagenet_classifier).cpu().eval()
    logits = probe(photos)
    return (logits.argmax(1) == torch.as_tensor(labels)).float().mean().item()


# ---------------------------------------------------------------- trainable layers (notebook 02)

def _block_params(block: nn.Module) -> int:
    return sum(p.numel() for p in block.parameters())


def _set_last_trainable(blocks: Sequence[nn.Module], head: nn.Module, k: int) -> None:
    n = len(blocks)
    for i, block in enumerate(blocks):
        for p in block.parameters():
            p.requires_grad_(i >= n - k)
    for p in head.parameters():
        p.requires_grad_(True)


class UnfreezingProfiler:
    """Trainable parameters and measured training speed with the last ``k`` body blocks unfrozen.

    Works on a private copy of ``net`` (its ``head`` must be a submodule), so
    the caller's network keeps its weights and flags. Speed is the best of
    ``steps`` timed AdamW steps on one batch (after one warm-up step), run
    through :func:`tlcourse.train.run_steps` on ``device`` (default
    :func:`~tlcourse.device.pick_device`) with ``threads`` CPU threads: one
    thread by default, because a second busy process makes multi-threaded
    timings erratic, and the ratios between values of k are the point.
    Frozen blocks at the input end need no backward pass, which is where the
    speed comes from. BatchNorm layers stay in eval mode.
    """

    def __init__(self, net: nn.Module, head: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 image_size: int | None = None, steps: int = 3, threads: int | None = 1,
                 device: torch.device | str | None = None):
        if not any(m is head for m in net.modules()):
            raise ValueError("head must be a submodule of net (e.g. net.classifier)")
        if len(images) != len(labels) or not len(images):
            raise ValueError(f"need one label per image and at least one image; got {len(images)} images "
                             f"and {len(labels)} labels")
        self.net, self.head = copy.deepcopy((net, head))  # one deepcopy keeps head inside net
        self.blocks = body_blocks(self.net)
        self.model = with_input_transform(self.net, image_size) if image_size else self.net
        self.device = pick_device(device)
        self.model.to(self.device).eval()  # BatchNorm statistics must not drift while we time
        self.images, self.labels, self.steps = images, labels.long(), max(1, int(steps))
        self.threads = threads
        self.total = sum(p.numel() for p in self.net.parameters())
        self.block_params = [_block_params(b) for b in self.blocks]
        self.head_params = _block_params(self.head)
        self._speed: dict[int, float] = {}

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def trainable(self, k: int) -> int:
        """Parameters that train with the head and the last ``k`` blocks unfrozen."""
        k = self._check_k(k)
        return self.head_params + sum(self.block_params[self.n_blocks - k:])

    def _check_k(self, k: int) -> int:
        if not 0 <= int(k) <= self.n_blocks:
            raise ValueError(f"k={k}: choose between 0 (head only) and {self.n_blocks} (every block)")
        return int(k)

    def images_per_second(self, k: int) -> float:
        """Measured training throughput with the last ``k`` blocks trainable (cached per ``k``)."""
        k = self._check_k(k)
        if k not in self._speed:
            _set_last_trainable(self.blocks, self.head, k)
            params = [p for p in self.net.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=1e-6)
            loss_fn = nn.CrossEntropyLoss()
            saved_threads = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            def step(batch):
                images, labels = batch
                t0 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                loss_fn(self.model(images), labels).backward()
                optimizer.step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                return time.perf_counter() - t0

            try:
                batches = [(self.images, self.labels)] * (self.steps + 1)
                times = run_steps(step, batches, device=self.device)[1:]  # step 0 allocates optimizer state
            finally:
                torch.set_num_threads(saved_threads)
            self._speed[k] = len(self.images) / min(times)
        return self._speed[k]

    def row(self, k: int) -> dict:
        trainable = self.trainable(k)
        return dict(k=k, trainable=trainable, share=trainable / self.total, img_per_s=self.images_per_second(k))

    def speed_points(self) -> tuple[list[int], list[float]]:
        ks = sorted(self._speed)
        return ks, [self._speed[k] for k in ks]


def default_unfreeze_points(n_blocks: int, points: int = 7) -> list[int]:
    """About ``points`` values of k from 0 to ``n_blocks``, denser near the output end."""
    ks = {0, n_blocks}
    ks |= {int(round(n_blocks * (1 - (1 - t) ** 0.5))) for t in np.linspace(0, 1, points)}
    return sorted(ks)


def _plot_unfreezing(prof: UnfreezingProfiler, k: int | None):
    fig, (ax_p, ax_s) = plt.subplots(1, 2, figsize=(10, 3.4))
    n = prof.n_blocks
    if k is None:  # static: the whole curve
        ks = list(range(n + 1))
        ax_p.plot(ks, [prof.trainable(j) / 1e6 for j in ks], marker=".")
        ax_p.set_xlabel("blocks unfrozen from the output end (k)")
        ax_p.set_ylabel("trainable parameters (millions)")
        ax_p.set_title("trainable parameters as blocks unfreeze")
    else:
        colors = ["tab:orange" if i >= n - k else "lightgray" for i in range(n)]
        ax_p.bar(range(n), np.asarray(prof.block_params) / 1e3, color=colors)
        ax_p.bar([n], [prof.head_params / 1e3], color="tab:red")
        ax_p.set_xticks([0, n // 2, n - 1, n], ["0", str(n // 2), str(n - 1), "head"])
        ax_p.set_xlabel("block (input -> output)"), ax_p.set_ylabel("parameters (thousands)")
        ax_p.set_title(f"last {k} block(s) + head trainable: {prof.trainable(k) / 1e6:.2f} M "
                       f"({prof.trainable(k) / prof.total:.0%})", fontsize=10)
    ks, speeds = prof.speed_points()
    ax_s.plot(ks, speeds, marker="o")
    if k is not None:
        ax_s.plot([k], [prof.images_per_second(k)], marker="o", ms=12, mfc="none", mec="tab:red", mew=2)
    ax_s.set_xlim(-0.5, n + 0.5), ax_s.set_ylim(0, max(speeds) * 1.15)
    ax_s.set_xlabel("blocks unfrozen (k)"), ax_s.set_ylabel("training images / s (measured)")
    ax_s.set_title(f"speed of one training step, batch {len(prof.images)}", fontsize=10)
    for ax in (ax_p, ax_s):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def trainable_layers_explorer(net: nn.Module, head: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                              image_size: int | None = None, ks: Sequence[int] | None = None, steps: int = 3,
                              threads: int | None = 1, interactive: bool | None = None):
    """Which layers are trainable: parameter count and measured speed as blocks unfreeze.

    ``net`` is a network whose body :func:`body_blocks`
    understands, ``head`` its new head, ``images``/``labels`` one training
    batch of course images (resized to ``image_size`` on the way in). Speed
    is measured at ``ks`` (default: about seven values of k) before anything
    is shown; the slider measures any other k when it is first chosen.
    Returns the widget (interactive) or ``(figure, rows)`` headless.
    """
    prof = UnfreezingProfiler(net, head, images, labels, image_size=image_size, steps=steps, threads=threads)
    ks = sorted(set(ks)) if ks is not None else default_unfreeze_points(prof.n_blocks)
    rows = [prof.row(k) for k in ks]
    full = prof.images_per_second(prof.n_blocks)
    header = ["k", "trainable params", "share", "images/s", "vs all blocks"]
    fmt = lambda r: [str(r["k"]), f"{r['trainable']:,}", f"{r['share']:.1%}",  # noqa: E731
                     f"{r['img_per_s']:.0f}", f"{r['img_per_s'] / full:.1f}x"]
    if not _use_widgets(interactive):
        print(f"{prof.n_blocks} body blocks, {prof.total:,} parameters; speed measured on one batch of "
              f"{len(images)} (best of {prof.steps} steps on {prof.threads or torch.get_num_threads()} "
              "thread(s))\n" + text_table(header, [fmt(r) for r in rows]))
        return _plot_unfreezing(prof, None), rows

    import ipywidgets as widgets

    slider = widgets.IntSlider(value=min(3, prof.n_blocks), min=0, max=prof.n_blocks, step=1,
                               description="blocks unfrozen", continuous_update=False,
                               style={"description_width": "initial"})

    def render(k: int):
        r = prof.row(k)
        return (f"<b>head + last {k} block(s) trainable</b>: {r['trainable']:,} of {prof.total:,} "
                f"parameters ({r['share']:.1%}); measured {r['img_per_s']:.0f} training images/s, "
                f"{r['img_per_s'] / full:.1f}x the speed with every block trainable.", _plot_unfreezing(prof, k))

    return slider_explorer(slider, render, layout="summary-first")
