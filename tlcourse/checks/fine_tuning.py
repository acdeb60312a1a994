"""Checks for notebook 02, fine-tuning.

q1 ``replace_head(model, num_classes)``; q2 ``make_param_groups(model, head,
body_lr, head_lr)``; q3 ``unfreeze_last(blocks, k, optimizer, lr)``.
Each is evaluated on small fixed models built here, so a check takes well
under a second and gives the same verdict on CPU and GPU.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ._core import Question, QuestionSet, Wrong


def _as_list(params) -> list:
    if isinstance(params, torch.Tensor):
        return [params]
    return list(params)


# ---------------------------------------------------------------- q1

class _ProbeClassifier(nn.Module):
    """A tiny torchvision-style classifier: ``features`` then ``classifier = Sequential(Dropout, Linear)``."""

    def __init__(self, width: int, old_classes: int, seed: int, hidden: int | None = None):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        if hidden is None:
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, old_classes))
        else:  # a longer head (VGG-style): its last Linear is not at position 1, and its input is `hidden`
            self.classifier = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.2),
                                            nn.Linear(hidden, old_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def _check_replace(replace_head, width: int, old_classes: int, num_classes: int, seed: int,
                   hidden: int | None = None) -> None:
    model = _ProbeClassifier(width, old_classes, seed, hidden)
    body_before = copy.deepcopy(model.features.state_dict())
    old_linear = model.classifier[-1]
    kept = list(model.classifier)[:-1]
    try:
        out = replace_head(model, num_classes)
    except AttributeError as exc:
        if hidden is not None and "in_features" in str(exc):
            raise Wrong("on a classifier with several layers (Linear, ReLU, Dropout, Linear) your code read "
                        "`in_features` from a layer that has none: the layer to replace is the *last* element, "
                        "`[-1]`; position 1 is the last one only in a two-element classifier.") from None
        raise
    if out is None:
        raise Wrong("`replace_head` must return the model (end with `return model`), so it can be used inline.")
    if out is not model:
        raise Wrong("`replace_head` returned a different object; change the model you were given in place "
                    "(assign a new layer to its classifier) and return it.")
    linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)] \
        if isinstance(model.classifier, nn.Module) else []
    if not linears:
        raise Wrong("the model's `classifier` has no nn.Linear layer any more; the new head is a Linear layer "
                    "from the body's features to the new classes.")
    if any(m is old_linear for m in linears) or any(m.out_features == old_classes for m in linears):
        raise Wrong(f"the old {old_classes}-way output layer is still in the classifier. Adding a new layer "
                    "on top of the old one keeps the source task's logits (1,000 for ImageNet) as a bottleneck; "
                    "replace the last Linear layer instead of stacking another one after it.")
    new = linears[-1]
    in_size = width if hidden is None else hidden
    if new.in_features != in_size:
        hint = (f" ({new.in_features} is the old layer's number of *outputs*)" if new.in_features == old_classes
                else " (a hard-coded number does not fit every backbone)")
        raise Wrong(f"the new head has the wrong input dimension: it expects {new.in_features} features, "
                    f"but the layer before it produces {in_size}{hint}. Read `in_features` from the layer "
                    "you replace.")
    now = list(model.classifier) if isinstance(model.classifier, nn.Sequential) else [model.classifier]
    if hidden is not None and (len(now) != len(kept) + 1 or any(a is not b for a, b in zip(now, kept))):
        raise Wrong("on a classifier with several layers (Linear, ReLU, Dropout, Linear) your surgery changed "
                    "more than its last layer. Replace only the last element, `[-1]`, wherever it sits: "
                    "position 1 is the last one only in a two-element classifier.")
    if new.out_features != num_classes:
        raise Wrong(f"the new head has {new.out_features} outputs for {num_classes} classes; it needs one "
                    "logit per class: use `num_classes`, not a hard-coded number.")
    if not all(p.requires_grad for p in new.parameters()):
        raise Wrong("the new head's parameters have requires_grad=False, so it could never learn.")
    frozen = [n for n, p in model.features.named_parameters() if not p.requires_grad]
    if frozen:
        raise Wrong(f"`replace_head` froze the body (e.g. `features.{frozen[0]}` has requires_grad=False). "
                    "Surgery replaces the head and leaves the body as it was, trainable: whether to freeze it "
                    "is a later, separate decision (exercises 2 and 3 fine-tune it).")
    after = model.features.state_dict()
    if any(not torch.equal(body_before[k], after[k]) for k in body_before):
        raise Wrong("`replace_head` changed the body's weights; surgery on the head must leave the "
                    "pretrained body exactly as it was.")
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(seed)))
    if y.shape != (4, num_classes):
        raise Wrong(f"the model now outputs shape {tuple(y.shape)} for 4 images; expected (4, {num_classes}).")
    if (y >= 0).all() and torch.allclose(y.sum(1), torch.ones(4), atol=1e-4):
        raise Wrong("the head outputs probabilities (a softmax). Keep raw logits: `nn.CrossEntropyLoss` "
                    "applies log-softmax itself.")


def _eval_replace(replace_head) -> None:
    _check_replace(replace_head, width=24, old_classes=7, num_classes=3, seed=0)
    _check_replace(replace_head, width=40, old_classes=9, num_classes=10, seed=1)
    _check_replace(replace_head, width=16, old_classes=9, num_classes=4, seed=2, hidden=12)


# ---------------------------------------------------------------- q2

class _ProbeNet(nn.Module):
    """``features`` -> ``neck`` -> ``classifier``: the neck sits in neither the features nor the head."""

    def __init__(self, freeze_first: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8))
        self.neck = nn.Linear(8, 8)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(8, 3))
        if freeze_first:
            for p in self.features[0].parameters():
                p.requires_grad_(False)

    def forward(self, x):
        return self.classifier(torch.relu(self.neck(self.features(x))))


class _HeadFirstNet(nn.Module):
    """A two-layer ``head`` registered *before* the body, and no ``classifier``: the head is found only
    through the ``head`` argument, never by its position in ``model.parameters()`` or by a fixed name."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.head = nn.Sequential(nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3))
        self.body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.out_norm = nn.LayerNorm(3)  # registered after the head: the head is not the last parameters either

    def forward(self, x):
        return self.out_norm(self.head(self.body(x)))


def _call_groups(make_param_groups, model, head):
    try:
        return make_param_groups(model, head, 1e-4, 1e-3)
    except AttributeError as exc:
        if "classifier" in str(exc):
            raise Wrong("your function reads `model.classifier`, but the head is the `head` argument: this "
                        "model calls its head `model.head`. Use `head.parameters()`, whatever the head is "
                        "called.") from None
        raise


def _check_groups(make_param_groups, model: nn.Module, head: nn.Module) -> None:
    names = {id(p): n for n, p in model.named_parameters()}
    head_ids = {id(p) for p in head.parameters()}
    groups = _call_groups(make_param_groups, model, head)
    if isinstance(groups, dict):
        raise Wrong("return a *list* of parameter groups (dicts), one for the body and one for the head, "
                    "not a single dict.")
    try:
        groups = list(groups)
    except TypeError:
        raise Wrong("`make_param_groups` must return a list of dicts like "
                    "`{'params': [...], 'lr': ...}`.") from None
    if not groups or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise Wrong("each parameter group is a dict with a 'params' entry (and an 'lr'), "
                    "the format `torch.optim.AdamW(groups)` accepts.")
    groups = [{**g, "params": _as_list(g["params"])} for g in groups]  # generators are read once
    seen: dict[int, int] = {}
    lr_of: dict[int, float] = {}
    for gi, g in enumerate(groups):
        params = _as_list(g["params"])
        if any(isinstance(p, nn.Module) for p in params):
            raise Wrong("a group's 'params' holds modules; it must hold parameter tensors "
                        "(use `module.parameters()`).")
        if any(not isinstance(p, torch.Tensor) for p in params):
            raise Wrong("a group's 'params' holds something that is not a parameter tensor "
                        "(names? use the tensors themselves).")
        if params and "lr" not in g:
            raise Wrong("a group has no 'lr', so the optimizer's single default LR would apply to it: "
                        "give every group its own learning rate.")
        for p in params:
            seen[id(p)] = seen.get(id(p), 0) + 1
            lr_of[id(p)] = g.get("lr")
    dup = [names.get(i, "?") for i, c in seen.items() if c > 1]
    if dup:
        raise Wrong(f"parameters are present in two groups (e.g. `{dup[0]}`): torch refuses that, and it "
                    "would be ambiguous which learning rate applies. Put the head's parameters in the head "
                    "group and only the *other* parameters in the body group (`model.parameters()` includes "
                    "the head).")
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise Wrong(f"{len(missing)} trainable parameter tensors are left out of every group (e.g. "
                    f"`{missing[0]}`), so the optimizer would never update them. The body is *everything "
                    "that is not the head*, not only `model.features`.")
    foreign = [i for i in seen if i not in names]
    if foreign:
        raise Wrong("a group holds tensors that are not parameters of this model.")
    at_head_lr = {i for i, lr in lr_of.items() if lr == 1e-3}
    swapped = at_head_lr == {i for i in seen if i not in head_ids}
    if not swapped and at_head_lr != {i for i in head_ids if i in seen}:
        intruder = next((names[i] for i in names if i in at_head_lr and i not in head_ids), None)
        absent = next(names[i] for i in names if i in head_ids and i not in at_head_lr) if not intruder else None
        where = f"`{intruder}` is in the head group" if intruder else f"`{absent}` is not in the head group"
        raise Wrong(f"the head group is not the head: {where}. Here the head "
                    f"({len(head_ids)} parameter tensors) is neither one layer nor the last parameters of the "
                    "model; take its parameters from the `head` argument (`head.parameters()`), not from "
                    "their position in `model.parameters()`.")
    for i in head_ids:
        if i in lr_of and lr_of[i] != 1e-3:
            which = ("the body's learning rate (are the two swapped?)" if lr_of[i] == 1e-4
                     else f"learning rate {lr_of[i]}")
            raise Wrong(f"the head's parameters (e.g. `{names[i]}`) get {which}; the head group must use "
                        "`head_lr`.")
    for i, lr in lr_of.items():
        if i not in head_ids and lr != 1e-4:
            raise Wrong(f"body parameters (e.g. `{names[i]}`) get learning rate {lr}; the body group must use "
                        "`body_lr` (a smaller step, so the pretrained features change gently).")
    try:
        opt = torch.optim.AdamW(groups)
    except Exception as exc:  # pragma: no cover - the checks above catch the usual causes
        raise Wrong(f"torch.optim.AdamW does not accept these groups: {exc}") from None
    # a step must move both the body and the head
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(2))
    nn.functional.cross_entropy(model(x), torch.arange(16) % 3).backward()
    opt.step()
    stuck = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    if stuck:
        raise Wrong(f"after an optimizer step `{stuck[0]}` did not change; every trainable parameter must "
                    "be in a group the optimizer updates.")


def _eval_groups(make_param_groups) -> None:
    for model in (_ProbeNet(), _ProbeNet(freeze_first=True)):
        _check_groups(make_param_groups, model, model.classifier)
    model = _HeadFirstNet()
    _check_groups(make_param_groups, model, model.head)


# ---------------------------------------------------------------- q3

def _probe_blocks(n: int = 5, seed: int = 0) -> tuple[list[nn.Module], nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(n)], nn.Linear(4, 2)


def _state(blocks) -> list[bool]:
    return [all(p.requires_grad for p in b.parameters()) for b in blocks]


def _frozen_state(blocks) -> list[bool]:
    return [not any(p.requires_grad for p in b.parameters()) for b in blocks]


def _opt_ids(opt) -> list[int]:
    return [id(p) for g in opt.param_groups for p in g["params"]]


def _call_unfreeze(unfreeze_last, blocks, k, opt, lr):
    try:
        return unfreeze_last(blocks, k, opt, lr)
    except ValueError as exc:
        if "more than one parameter group" in str(exc):
            raise Wrong("the optimizer already holds some of these parameters, and adding them again as a "
                        "new group fails (`some parameters appear in more than one parameter group`). Add "
                        "only the parameters the optimizer does not have yet (compare with `id(p)`).") from None
        raise


def _check_exact(blocks, k: int, where: str) -> None:
    n = len(blocks)
    want = [i >= n - k for i in range(n)]
    on, off = _state(blocks), _frozen_state(blocks)
    if all(on[i] == want[i] and off[i] == (not want[i]) for i in range(n)):
        return
    got = [i for i in range(n) if on[i]]
    if k == 0 and all(on):
        raise Wrong(f"{where}: k=0 left every block trainable. Careful with `blocks[-k:]`: for k=0 it is "
                    "`blocks[0:]`, the whole list. Unfreezing the last 0 blocks must leave them all frozen.")
    if got == list(range(min(k, n))) and k < n:
        raise Wrong(f"{where}: you unfroze blocks {got}, the first {k}, at the *input* end. Gradual "
                    "unfreezing starts from the output end: the last blocks hold the most task-specific "
                    "features, the first ones generic edges and textures worth keeping.")
    if any(on[i] for i in range(n) if not want[i]):
        raise Wrong(f"{where}: blocks {got} are trainable, but only the last {k} of {n} should be. Blocks "
                    "outside the last k must be frozen (requires_grad=False), even if they were trainable "
                    "before the call.")
    raise Wrong(f"{where}: the last {k} of {n} blocks must have every parameter trainable; trainable "
                f"blocks are {got}.")


def _eval_unfreeze(unfreeze_last) -> None:
    # 1. from a frozen body, head-only optimizer: unfreeze the last 2 of 5
    blocks, head = _probe_blocks()
    for b in blocks:
        for p in b.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2)
    _call_unfreeze(unfreeze_last, blocks, 2, opt, 1e-3)
    _check_exact(blocks, 2, "unfreeze_last(blocks, 2, ...) on 5 frozen blocks")
    ids = _opt_ids(opt)
    new_params = [p for b in blocks[3:] for p in b.parameters()]
    if not all(id(p) in ids for p in new_params):
        raise Wrong("the newly unfrozen parameters are not in the optimizer you were given, so it would "
                    "never update them: `requires_grad=True` alone is not enough when the optimizer was "
                    "built over the head only. Hand them to it with `optimizer.add_param_group(...)`.")
    if len(ids) != len(set(ids)):
        raise Wrong("the optimizer holds some parameters twice; add only the ones it does not have yet.")
    for g in opt.param_groups:
        if any(p is head.weight for p in g["params"]) and g["lr"] != 1e-2:
            raise Wrong("the head's learning rate changed; leave the existing groups as they are and "
                        "give only the new parameters the learning rate `lr`.")
    for g in opt.param_groups:
        if any(id(p) in {id(q) for q in new_params} for p in g["params"]) and g["lr"] != 1e-3:
            raise Wrong(f"the newly unfrozen parameters got learning rate {g['lr']}; give their group `lr`.")
    # the optimizer really trains them
    w_before = blocks[4][0].weight.detach().clone()
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    h = x
    for b in blocks:
        h = b(h)
    nn.functional.cross_entropy(head(h), torch.arange(8) % 2).backward()
    opt.step()
    opt.zero_grad()
    if torch.equal(blocks[4][0].weight, w_before):
        raise Wrong("after an optimizer step the last block did not change: the optimizer does not "
                    "update the parameters you unfroze.")
    # 2. the next stage of the schedule: 4 blocks, without duplicates
    _call_unfreeze(unfreeze_last, blocks, 4, opt, 1e-3)
    _check_exact(blocks, 4, "a second call, unfreeze_last(blocks, 4, ...)")
    ids = _opt_ids(opt)
    if len(ids) != len(set(ids)):
        raise Wrong("after a second call the optimizer holds some parameters twice; add only the "
                    "parameters it does not have yet.")
    if not all(id(p) in ids for b in blocks[1:] for p in b.parameters()):
        raise Wrong("after a second call (k=4) the newly unfrozen blocks are not in the optimizer.")
    # 3. from a fully trainable network: exactly the last k, and the edge cases
    for k in (0, 3, 7):
        blocks, head = _probe_blocks(seed=k)
        opt = torch.optim.AdamW([p for b in blocks for p in b.parameters()] + list(head.parameters()), lr=1e-3)
        _call_unfreeze(unfreeze_last, blocks, k, opt, 1e-3)
        where = (f"unfreeze_last(blocks, {k}, ...) on 5 trainable blocks"
                 + (" (k larger than the number of blocks means all of them)" if k > 5 else ""))
        _check_exact(blocks, min(k, 5), where)
        ids = _opt_ids(opt)
        if len(ids) != len(set(ids)):
            raise Wrong("when the optimizer already holds every parameter, nothing new must be added: "
                        "some parameters are in it twice now.")


# ---------------------------------------------------------------- questions

q1 = Question(
    "q1", "replace the head", ["replace_head"], _eval_replace,
    hints=["Network surgery on the output end: the body stays, the last layer that maps features to the "
           "1,000 ImageNet classes goes, and a new one for your classes takes its place.",
           "The new layer's input size must match what the body produces; the layer you are replacing "
           "knows it (`in_features`). Its output size is the number of classes.",
           "In torchvision's MobileNetV2 the head is `model.classifier`, a Sequential: its last element is the "
           "layer to replace, and a Sequential's positions can be reassigned like a list's. The function "
           "hands back the model it changed."],
    why="the body's features are kept, and a freshly initialised head of the right shape maps them to your "
        "classes. The same surgery works for any backbone once you know where its head lives.")

q2 = Question(
    "q2", "parameter groups with per-group learning rates", ["make_param_groups"], _eval_groups,
    hints=["An optimizer accepts a list of dicts, each with its own 'params' and 'lr'. Every trainable "
           "parameter must be in exactly one of them.",
           "The head group is easy: the head's parameters. The body group is every *other* parameter of "
           "the model, which is more than the features (there may be layers in between).",
           "Tensors cannot be compared with `in` safely (that compares values); collect the head "
           "parameters' `id(p)` in a set and keep the model parameters whose id is not in it."],
    why="discriminative learning rates let the new, randomly initialised head learn fast while the "
        "pretrained body moves in small steps, so it adapts without forgetting what made it useful.")

q3 = Question(
    "q3", "unfreeze the last k blocks", ["unfreeze_last"], _eval_unfreeze,
    twins=("tlcourse.lessons.fine_tuning.set_trainable",),
    hints=["Block i is trainable exactly when it is among the last k of the list; every other block is "
           "frozen, including the case k = 0.",
           "Loop over the blocks with their index and set each parameter's `requires_grad` by comparing "
           "the index with len(blocks) - k (watch out: `blocks[-0:]` is the whole list).",
           "An optimizer only updates what it was given. Collect the `id`s of the parameters already in "
           "`optimizer.param_groups`; the trainable parameters not among them become one new group, with "
           "the learning rate you were given, through the optimizer's `add_param_group` method (and only "
           "when there is at least one)."],
    why="gradual unfreezing trains the head first, then releases the blocks nearest the output, then "
        "deeper ones: the random head cannot send large, noisy gradients into the pretrained body early on.")

questions = QuestionSet(q1, q2, q3)
check, hint, grade = questions.check, questions.hint, questions.grade
