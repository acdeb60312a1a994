"""Checks for notebook 01, feature extraction.

q1 ``freeze_backbone(model)``; q2 ``extract(backbone, loader)``;
q3 ``make_head(feature_dim, num_classes)`` with ``train_head(...)``.
Each is evaluated on small fixed models and data (expected features stored in
``_expected/feature_extraction.json`` by scripts/make_check_expected.py), so a
check takes well under a second and gives the same verdict on CPU and GPU.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import _expected
from ._core import Question, QuestionSet, Wrong

_TOPIC = "feature_extraction"


def _probe_backbone(seed: int = 0) -> nn.Module:
    """A small backbone whose output depends on train/eval mode (BatchNorm, Dropout)."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, 16))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        net[1].running_mean.copy_(torch.randn(8, generator=g) * 0.1)
        net[1].running_var.copy_(torch.rand(8, generator=g) + 0.5)
    return net


def _probe_images(n: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- q1

def _eval_freeze(freeze_backbone) -> None:
    net = _probe_backbone()
    net.train()  # as a student would have it after loading for training
    before = copy.deepcopy(net.state_dict())
    out = freeze_backbone(net)
    if out is not net:
        if out is None:
            raise Wrong("`freeze_backbone` must return the model it froze (end with `return model`), "
                        "so it can be used inline: `backbone = freeze_backbone(load_backbone(...).model)`.")
        raise Wrong("`freeze_backbone` returned a different object; freeze the model you were given "
                    "in place and return it.")
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    if trainable:
        raise Wrong(f"{len(trainable)} of {len(list(net.parameters()))} parameter tensors still have "
                    f"requires_grad=True (e.g. `{trainable[0]}`). Setting an attribute on the module "
                    "itself does nothing: each parameter tensor carries its own `requires_grad` flag. "
                    "Feature extraction freezes every backbone weight so only the new head learns.")
    if any(m.training for m in net.modules()):
        raise Wrong("the parameters are frozen but the model is still in training mode. BatchNorm keeps "
                    "updating its running statistics in training mode (and Dropout keeps dropping), so "
                    "a 'frozen' backbone would still change and give noisy features. Put it in eval mode.")
    with torch.no_grad():
        net(_probe_images())
    after = net.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        raise Wrong(f"a forward pass still changed `{changed[0]}`; a frozen backbone must not change at all.")


# ---------------------------------------------------------------- q2

def _eval_extract(extract) -> None:
    net = _probe_backbone(seed=3)
    net.train()
    x = _probe_images(37, seed=4)  # 37: the last batch of 8 is partial
    y = torch.arange(37) % 5
    _expected.verify(_TOPIC, "extract_probe", x, *net.state_dict().values())
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    before = copy.deepcopy(net.state_dict())
    result = extract(net, loader)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong("`extract` must return a pair `(features, labels)`, both tensors.")
    feats, labels = result
    if not isinstance(feats, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise Wrong("return tensors, not lists: concatenate the per-batch results with `torch.cat`.")
    if feats.shape[0] != 37 or labels.shape[0] != 37:
        raise Wrong(f"got {feats.shape[0]} feature rows and {labels.shape[0]} labels for 37 examples: "
                    "every batch must be kept, including the last, smaller one.")
    if feats.requires_grad or feats.grad_fn is not None:
        raise Wrong("the features carry an autograd graph (`requires_grad=True`). Run the backbone "
                    "under `torch.no_grad()`: nothing will be backpropagated into it, and keeping the "
                    "graph for every batch wastes memory that grows with the dataset.")
    after = net.state_dict()
    if any(not torch.equal(before[k], after[k]) for k in before):
        raise Wrong("extracting features changed the backbone's BatchNorm running statistics: the "
                    "backbone ran in training mode. Call `.eval()` before extracting.")
    ref = _expected.value(_TOPIC, "eval_features").float()
    if feats.shape != ref.shape:
        raise Wrong(f"features have shape {tuple(feats.shape)}, expected {tuple(ref.shape)}: keep one row per example.")
    if not torch.allclose(feats.float().cpu(), ref, atol=1e-4, rtol=1e-4):
        raise Wrong("the features differ from the backbone's eval-mode output. In training mode Dropout "
                    "drops units at random and BatchNorm uses batch statistics; features must be "
                    "deterministic. Use `.eval()`, and keep the loader's order.")
    if not torch.equal(labels.cpu().long(), y):
        raise Wrong("the labels are not in the same order as the features; collect them batch by batch.")
    # 33 examples in batches of 8: the last batch holds exactly one image
    one_left = DataLoader(TensorDataset(x[:33], y[:33]), batch_size=8, shuffle=False)
    try:
        feats, labels = extract(net, one_left)
    except Exception as exc:  # e.g. torch.cat of (8, 16) and (16,) blocks
        raise Wrong(f"when the last batch holds ONE image, `extract` fails ({type(exc).__name__}: {exc}). A "
                    "`.squeeze()` (or indexing) drops the batch dimension of a batch of one; keep it.") from None
    if tuple(feats.shape) != (33, ref.shape[1]) or tuple(labels.shape) != (33,):
        raise Wrong(f"with a last batch of ONE image you return features {tuple(feats.shape)} and labels "
                    f"{tuple(labels.shape)}; expected (33, {ref.shape[1]}) and (33,). Keep the batch dimension "
                    "of every batch, even a batch of one.")
    same = torch.allclose(feats.float().cpu(), ref[:33], atol=1e-4, rtol=1e-4)
    if not same or not torch.equal(labels.cpu().long(), y[:33]):
        raise Wrong("with a last batch of ONE image the features or labels differ from the backbone's eval-mode "
                    "output in the loader's order.")


# ---------------------------------------------------------------- q3

def _blobs(n_per_class: int, dim: int, classes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 2.0
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centres[y] + torch.randn(len(y), dim, generator=g)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


# a few seeded full-batch steps on features where every named mistake lands on other weights
_TRAIN_SEED, _TRAIN_CLASSES = 5, 4
_TRAIN_ARGS = dict(steps=5, lr=0.05, weight_decay=0.5)
_HEAD_MISTAKES = {
    "no_zero_grad": "the gradients pile up from step to step: call `zero_grad()` on the optimizer every step, "
                    "before `backward()`. The head still learns on easy data, but every step after the first "
                    "follows the sum of all past gradients.",
    "adam": "that is Adam without decoupled weight decay; the exercise asks for `torch.optim.AdamW` with the "
            "`lr` and `weight_decay` you are given.",
    "softmax": "the loss is computed on probabilities (a softmax before cross-entropy). `nn.CrossEntropyLoss` "
               "takes raw logits and applies log-softmax itself.",
    "defaults": "the head trained with the default steps, lr and weight decay, not the ones passed in: use the "
                "arguments `steps`, `lr` and `weight_decay`.",
}


def _train_probe():
    g = torch.Generator().manual_seed(21)
    return torch.randn(24, 6, generator=g) * 3.0, torch.randint(0, _TRAIN_CLASSES, (24,), generator=g)


def _check_head_steps(train_head) -> None:
    x, y = _train_probe()
    _expected.verify(_TOPIC, "train_probe", x, y)
    torch.manual_seed(_TRAIN_SEED)
    head = train_head(x.clone(), y.clone(), _TRAIN_CLASSES, **_TRAIN_ARGS)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)] if isinstance(head, nn.Module) else []
    if len(linears) != 1:
        raise Wrong("`train_head` must return the head built by `make_head`: one nn.Linear.")
    got = [linears[0].weight.detach().float().cpu(), linears[0].bias.detach().float().cpu()]

    def same(name):
        want = [t.float() for t in map(torch.tensor, _expected.load(_TOPIC)["values"][f"head/{name}"])]
        return all(a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-3) for a, b in zip(got, want))

    if same("right"):
        return
    for name, message in _HEAD_MISTAKES.items():
        if same(name):
            raise Wrong(message)
    raise Wrong(f"after {_TRAIN_ARGS['steps']} seeded steps (steps={_TRAIN_ARGS['steps']}, lr={_TRAIN_ARGS['lr']}, "
                f"weight_decay={_TRAIN_ARGS['weight_decay']}) the head's weights differ from the reference run. "
                "Start from the head `make_head` returns, train on all the features at once (no mini-batches), "
                "with AdamW over the head's parameters and cross-entropy on the logits, one optimizer step per "
                "training step.")


def _eval_head(make_head, train_head) -> None:
    head = make_head(64, 5)
    if not isinstance(head, nn.Module):
        raise Wrong("`make_head` must return an nn.Module (for example an `nn.Linear`).")
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise Wrong("the head has no nn.Linear layer; a linear probe is one linear map from features to classes.")
    if len(linears) > 1:
        raise Wrong(f"the head has {len(linears)} Linear layers; a linear probe has exactly one, so that what "
                    "it measures is how linearly separable the pretrained features are.")
    if linears[0].in_features != 64:
        raise Wrong(f"the head's input size is {linears[0].in_features}, but the features have 64 dimensions: "
                    "use `feature_dim`, not a hard-coded number.")
    head.eval()
    with torch.no_grad():
        out = head(torch.randn(10, 64, generator=torch.Generator().manual_seed(0)))
    if out.shape != (10, 5):
        raise Wrong(f"the head maps (10, 64) features to {tuple(out.shape)}; expected (10, 5): one logit per class.")
    if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(10), atol=1e-4):
        raise Wrong("the head outputs probabilities (a softmax). `nn.CrossEntropyLoss` applies log-softmax "
                    "itself and expects raw logits; a softmax before it squashes the gradients.")
    x_all, y_all = _blobs(100, 64, 5, seed=9)
    x_tr, y_tr, x_te, y_te = x_all[:200], y_all[:200], x_all[200:], y_all[200:]
    x_before = x_tr.clone()
    torch.manual_seed(0)
    trained = train_head(x_tr, y_tr, 5)
    if not isinstance(trained, nn.Module):
        raise Wrong("`train_head` must return the trained head module.")
    if not torch.equal(x_tr, x_before):
        raise Wrong("`train_head` modified the features passed in; train on them without changing them in place.")
    trained.eval()
    with torch.no_grad():
        acc = (trained(x_te).argmax(1) == y_te).float().mean().item()
    if acc < 0.85:
        raise Wrong(f"the trained head scores {acc:.0%} on held-out, easily separable data (chance is 20%). "
                    "Check that the optimizer gets the head's parameters, that you call `zero_grad()` "
                    "each step, and that the loss is cross-entropy on logits.")
    _check_head_steps(train_head)


q1 = Question(
    "q1", "freeze a backbone", ["freeze_backbone"], _eval_freeze,
    twins=("tlcourse.lessons.fine_tuning.set_trainable",),
    hints=["Two things make a network 'frozen': no parameter receives gradient updates, and no layer "
           "changes its behaviour or statistics while data flows through it.",
           "Every parameter tensor has its own `requires_grad` flag; loop over `model.parameters()`.",
           "Layers such as BatchNorm and Dropout behave differently in training and evaluation mode; "
           "one method call switches the whole module tree. Return the model at the end."],
    why="a frozen backbone is a fixed feature map: it cannot overfit your few labels, its BatchNorm "
        "statistics stay those learned on ImageNet, and its features can be computed once and cached.")

q2 = Question(
    "q2", "the feature-extraction loop", ["extract"], _eval_extract,
    twins=("tlcourse.features.extract_features",),
    hints=["Features must be deterministic and must not build an autograd graph.",
           "Put the backbone in evaluation mode and run the loop inside `torch.no_grad()`.",
           "Collect the outputs and labels of every batch in lists and join them with `torch.cat` at the end."],
    why="in eval mode without gradients the backbone is a pure function: run it once, cache the "
        "features, and every experiment after that trains only a tiny head in seconds.")

q3 = Question(
    "q3", "build and train the linear head", ["make_head", "train_head"], _eval_head,
    twins=("tlcourse.train.train_linear_head", "tlcourse.lessons.fine_tuning.train_head_on_features"),
    hints=["A linear probe is one linear map from the features to one raw score (logit) per class, trained "
           "with cross-entropy while the features stay fixed.",
           "`make_head` needs only `nn.Linear`; in `train_head`, build the optimizer over the head's parameters "
           "only and use `nn.CrossEntropyLoss`, which expects logits.",
           "Each training step, on all the features at once: clear the old gradients, compute the loss of the "
           "logits, backpropagate it, and let the optimizer (AdamW, with the `lr` and `weight_decay` you are "
           "given) take one step. Repeat that `steps` times; the head you hand back is in evaluation mode."],
    why="a linear probe is the cheapest transfer there is: if the pretrained features separate the "
        "classes linearly, one matrix is all the new task needs.")

questions = QuestionSet(q1, q2, q3)
check, hint, grade = questions.check, questions.hint, questions.grade
