"""``fit``, ``run_steps``, ``evaluate`` and ``predict``: one careful training loop for the whole course.

No framework: progress bars (tqdm.auto), per-epoch history, mixed precision
on CUDA, gradient clipping, parameter groups, early stopping, atomic
checkpoints with resume, DistributedDataParallel under ``torchrun``, and a
clear error when the model's output does not fit the targets.

``run_steps`` is the step-runner under ``fit``: device placement of every
batch, autocast and progress. Loops that need their own step (a DANN step, a
distillation step a student writes, full-batch training of a head, :func:`train_linear_head`) call
it directly, so the device that :func:`~tlcourse.device.pick_device` chooses and
mixed precision reach every notebook.
"""
from __future__ import annotations

import copy
import math
import os
import pathlib
import time
from typing import Any, Callable, Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ._io import atomic_open
from .device import autocast, make_grad_scaler, pick_device, seed_everything


class TargetMismatchError(ValueError):
    """The model's output and the targets cannot go into the loss together."""


class History(dict):
    """Per-epoch metrics: ``history["val_acc"][-1]``; ``history.best("val_acc")``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        for k in list(self):
            self[k] = list(self[k])

    def log(self, **values: float) -> None:
        for k, v in values.items():
            self.setdefault(k, []).append(float(v))

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.values()), default=0)

    def best(self, key: str, mode: str = "max") -> float:
        return (max if mode == "max" else min)(self[key])

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.items() if v)
        return f"History({self.epochs} epochs: {last})"


# ---------------------------------------------------------------- batches

def split_batch(batch) -> tuple[Any, torch.Tensor | None]:
    """(inputs, targets) from a batch: ``(x, y)``, ``(dict, y)`` or a dict with ``labels``."""
    if isinstance(batch, dict):
        batch = dict(batch)
        return batch, batch.pop("labels", None)
    if isinstance(batch, (list, tuple)):
        return (batch[0], batch[1]) if len(batch) >= 2 else (batch[0], None)
    return batch, None


def to_device(obj, device: torch.device):
    non_blocking = device.type == "cuda"
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def forward(model: nn.Module, inputs) -> torch.Tensor:
    """Call the model on ``inputs`` and return logits (``.logits`` of HF outputs)."""
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return getattr(out, "logits", out)


def check_output_target(output: torch.Tensor, target: torch.Tensor, loss_fn: Callable) -> None:
    """Raise :class:`TargetMismatchError` with advice when output and target do not fit."""
    if not isinstance(output, torch.Tensor):
        raise TargetMismatchError(f"the model returned {type(output).__name__}, not a tensor of predictions")
    if output.ndim == 0 or output.shape[0] != target.shape[0]:
        raise TargetMismatchError(
            f"the model returned shape {tuple(output.shape)} for a batch of {target.shape[0]} targets; "
            "the first dimension must be the batch. Did a flatten/view drop or merge the batch dimension?")
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)):
        if target.is_floating_point() and target.shape != output.shape:
            raise TargetMismatchError(
                f"targets are {target.dtype} with shape {tuple(target.shape)}; class labels must be "
                "integer indices (call .long()) or probabilities shaped like the output "
                f"{tuple(output.shape)}")
        if not target.is_floating_point():
            if output.ndim != target.ndim + 1:
                raise TargetMismatchError(
                    f"classification needs output (batch, num_classes) for targets {tuple(target.shape)}, "
                    f"got {tuple(output.shape)}. Does the head end in nn.Linear(features, num_classes)?")
            n_cls = output.shape[1]
            if target.numel() and (int(target.max()) >= n_cls or int(target.min()) < 0):
                raise TargetMismatchError(
                    f"a target label is {int(target.max())} but the model has {n_cls} outputs; "
                    f"the head needs one output per class (labels 0..C-1).")
    elif isinstance(loss_fn, (nn.MSELoss, nn.L1Loss, nn.BCEWithLogitsLoss, nn.SmoothL1Loss)):
        if output.shape != target.shape:
            raise TargetMismatchError(f"{type(loss_fn).__name__} needs output and target of one shape; "
                                      f"got {tuple(output.shape)} and {tuple(target.shape)}")
        if not target.is_floating_point():
            raise TargetMismatchError(f"{type(loss_fn).__name__} needs float targets; got {target.dtype} (call .float())")


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | os.PathLike, **state) -> pathlib.Path:
    """Write ``state`` with torch.save atomically: a crash never leaves a half file."""
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)
    return pathlib.Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise RuntimeError(f"checkpoint {path} could not be read ({exc}); delete it to start afresh") from exc


# ---------------------------------------------------------------- distributed

def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _is_main() -> bool:
    return not _distributed() or dist.get_rank() == 0


def _distributed_loader(loader: DataLoader) -> DataLoader:
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    seed = [torch.initial_seed() % 2**31]
    dist.broadcast_object_list(seed, src=0)  # every rank must shard with one permutation
    sampler = DistributedSampler(loader.dataset, shuffle=shuffle, seed=seed[0])
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def make_loader(dataset, batch_size: int = 64, shuffle: bool = False, device: torch.device | None = None,
                seed: int = 0, **kw) -> DataLoader:
    """A DataLoader with pinned memory on CUDA and a seeded shuffle."""
    device = device or pick_device()
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      pin_memory=device.type == "cuda", **kw)


# ---------------------------------------------------------------- loop

def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def run_steps(step: Callable[[Any], Any], batches: Iterable, *, device: torch.device | str | None = None,
              amp: bool = True, progress: bool = False, desc: str = "train", total: int | None = None) -> list:
    """The one step-runner: every training loop of the course, :func:`fit` included, goes through it.

    For each batch it moves the batch to ``device`` (tensors, and tensors
    inside dicts, lists and tuples; default :func:`~tlcourse.device.pick_device`,
    which ``$TLCOURSE_DEVICE`` overrides), calls ``step(batch)`` under autocast
    (mixed precision on CUDA with ``amp``, a no-op elsewhere) and collects what
    the step returns, usually the batch loss as a float. ``progress`` shows a
    bar with the last float returned. The step does the optimisation itself
    (zero_grad, backward, step), so a student's step function plugs in unchanged;
    the caller puts its modules on ``device`` first.

    >>> losses = run_steps(lambda b: train_one_batch(*b), loader, device="cpu")
    """
    device = pick_device(device)
    if total is None:
        total = len(batches) if hasattr(batches, "__len__") else None
    bar = _progress(batches, total, desc, progress)
    outputs = []
    for batch in bar:
        with autocast(device, amp):
            out = step(to_device(batch, device))
        outputs.append(out)
        if progress and isinstance(out, (float, int)):
            bar.set_postfix(loss=f"{float(out):.4f}")
    return outputs


def train_linear_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 300,
                      lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0,
                      device: torch.device | str | None = None) -> nn.Linear:
    """A linear head trained full-batch with AdamW and cross-entropy on cached features (notebook 01's probe, reused by notebooks 04 and 08).

    Trains on ``device`` (default :func:`~tlcourse.device.pick_device`); returns the head on the CPU.
    """
    device = pick_device(device)
    seed_everything(seed)
    head = nn.Linear(features.shape[1], num_classes).to(device)
    features, labels = features.to(device), labels.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()

    def step(_):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(head(features), labels).backward()
        opt.step()

    run_steps(step, range(steps), device=device)
    return head.cpu().eval()


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable | None = None,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean loss and accuracy over ``loader``, in eval mode, without gradients."""
    device = device or next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    for batch in loader:
        inputs, target = split_batch(to_device(batch, device))
        with autocast(device):
            out = forward(model, inputs)
        out = out.float()
        n = target.shape[0]
        loss_sum += float(loss_fn(out, target)) * n
        if out.ndim == 2 and not target.is_floating_point():
            correct += int((out.argmax(1) == target).sum())
        total += n
    model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() got an empty loader")
    return {"loss": loss_sum / total, "acc": correct / total}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on tensors ``x``, ``y`` in one batch, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        return (model(x).argmax(1) == y).float().mean().item()
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None) -> torch.Tensor:
    """Concatenated model outputs (logits) over ``loader``, on the CPU, in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = []
    for batch in loader:
        inputs, _ = split_batch(to_device(batch, device))
        with autocast(device):
            outs.append(forward(model, inputs).float().cpu())
    model.train(was_training)
    return torch.cat(outs)


def fit(model: nn.Module, train_loader: DataLoader, val_loader: Iterable | None = None, *,
        epochs: int = 1, lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None,
        param_groups: list[dict] | None = None, weight_decay: float = 0.0,
        loss_fn: Callable | None = None, scheduler: Any = None, device: torch.device | str | None = None,
        amp: bool = True, grad_clip: float | None = None, early_stopping: int | None = None,
        monitor: str = "val_loss", checkpoint: str | os.PathLike | None = None, resume: bool = False,
        progress: bool = True, history: History | None = None) -> History:
    """Train ``model`` and return its :class:`History`.

    - ``optimizer`` or else AdamW over ``param_groups`` (each a dict with
      ``params`` and optionally its own ``lr``) or over the trainable parameters.
    - ``scheduler``: a torch LR scheduler, stepped once per batch.
    - On CUDA with ``amp``: autocast in bf16 where supported, else fp16 with a
      GradScaler; non-blocking copies.
    - ``early_stopping=k`` stops after ``k`` epochs without improvement of
      ``monitor`` and restores the best weights.
    - ``checkpoint``: written atomically after each epoch; ``resume=True``
      continues from it (model, optimizer, scheduler, scaler, history).
    - Under ``torchrun`` (an initialised process group) the model is wrapped
      in DistributedDataParallel and the train loader gets a DistributedSampler.
    """
    device = torch.device(device) if device else pick_device()
    if _distributed() and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per rank
        torch.cuda.set_device(device)
    model.to(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    if optimizer is None:
        groups = ([{**g, "params": [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])}
                   for g in param_groups] if param_groups
                  else [{"params": [p for p in model.parameters() if p.requires_grad]}])
        if not any(g["params"] for g in groups):
            raise ValueError("no trainable parameters: every parameter has requires_grad=False")
        optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    scaler = make_grad_scaler(device, amp)
    history = history if history is not None else History()
    start_epoch, best, stale = 0, None, 0
    if checkpoint and resume and pathlib.Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history.clear()
        history.update(History(state["history"]))
        start_epoch = state["epoch"] + 1
        if getattr(train_loader, "generator", None) is not None and state.get("loader_rng") is not None:
            train_loader.generator.set_state(state["loader_rng"])  # same shuffles as an unbroken run
        best, stale = state.get("early_stopping", (None, 0))
    train_model = model
    if _distributed():
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        train_loader = _distributed_loader(train_loader)
    mode = "min" if "loss" in monitor else "max"
    if start_epoch == 0 or best is None:
        best, stale = (math.inf if mode == "min" else -math.inf), 0
    best_state = None
    show = progress and _is_main()
    checked = False
    for epoch in range(start_epoch, epochs):
        if isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        train_model.train()
        t0 = time.perf_counter()
        stats = {"seen": 0, "loss_sum": 0.0, "correct": 0}

        def step(batch):
            nonlocal checked
            inputs, target = split_batch(batch)
            if target is None:
                raise TargetMismatchError("the batch has no targets: yield (inputs, targets) or a dict with 'labels'")
            out = forward(train_model, inputs)
            if not checked:
                check_output_target(out, target, loss_fn)
                checked = True
            loss = loss_fn(out.float(), target)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            n = target.shape[0]
            stats["seen"] += n
            stats["loss_sum"] += float(loss.detach()) * n
            if out.ndim == 2 and not target.is_floating_point():
                stats["correct"] += int((out.detach().argmax(1) == target).sum())
            return stats["loss_sum"] / stats["seen"]

        run_steps(step, train_loader, device=device, amp=amp, progress=show, desc=f"epoch {epoch + 1}/{epochs}",
                  total=len(train_loader))
        seen, loss_sum, correct = stats["seen"], stats["loss_sum"], stats["correct"]
        row = {"train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
               "lr": optimizer.param_groups[0]["lr"], "epoch_time": time.perf_counter() - t0}
        if val_loader is not None:
            v = evaluate(model, val_loader, loss_fn, device)
            row.update(val_loss=v["loss"], val_acc=v["acc"])
        history.log(**row)
        if checkpoint and _is_main():
            save_checkpoint(checkpoint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            scaler=scaler.state_dict() if scaler is not None else None,
                            history=dict(history), epoch=epoch, early_stopping=(best, stale),
                            loader_rng=(train_loader.generator.get_state()
                                        if getattr(train_loader, "generator", None) is not None else None))
        if early_stopping:
            if monitor not in row:
                raise ValueError(f"early stopping monitors {monitor!r}, which is not logged; "
                                 f"logged: {', '.join(row)} (pass val_loader for val_*)")
            value = row[monitor]
            if (value < best) if mode == "min" else (value > best):
                best, best_state, stale = value, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= early_stopping:
                    break
    if early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    return history
