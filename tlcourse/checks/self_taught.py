"""Checks for notebook 08, self-taught learning and progressive networks.

q1 the NT-Xent loss ``nt_xent(z1, z2, temperature)``; q2 the lateral adapter ``Lateral`` and the
forward pass of ``ProgressiveColumn`` (Rusu et al. 2016).

Each check feeds fixed inputs (built from a formula, no random numbers) and compares the
answer with values **stored here**: the right loss and the loss each typical mistake gives,
computed once by the reference in tests/test_checks_self_taught.py, which also verifies that
these numbers still match it. No reference implementation ships in the package.
"""
from __future__ import annotations


import torch

from ._core import NotAttempted, Question, QuestionSet, Wrong
from ._core import keep_rng as _keep_rng
from ._core import require_scalar_tensor as _require_scalar_tensor



# ---------------------------------------------------------------- q1: NT-Xent

def ntxent_inputs(n: int, d: int, phase: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 'views' (n × d) with rows of very different lengths, so that normalising matters."""
    i = torch.arange(n * d, dtype=torch.float64).reshape(n, d)
    scale = 1.0 + 0.6 * torch.arange(n, dtype=torch.float64)[:, None]
    z1 = torch.sin(1.3 * i + phase) * scale
    z2 = (torch.sin(1.3 * i + phase) + 0.8 * torch.cos(0.7 * i + 2 * phase)) * scale.flip(0)
    return z1.float(), z2.float()


# (n, d, temperature, phase) -> the loss of the right answer and of each mistake
NTXENT_EXPECTED = {
    (4, 3, 0.5, 0.3): {"correct": 0.96864107, "no_normalise": 2.5718585, "self_not_masked": 1.4125404, "positive_not_in_denominator": 0.3623906, "no_temperature": 1.2974804, "times_temperature": 1.5738984, "one_direction": 0.85316843, "sum_not_mean": 7.7491286, "self_as_positive": 1.0687913, "cross_view_only": 0.58021402},  # noqa: E501
    (6, 5, 0.1, 1.1): {"correct": 2.9043447, "no_normalise": 125.20616, "self_not_masked": 3.3504615, "positive_not_in_denominator": 2.8305736, "no_temperature": 2.3417394, "times_temperature": 2.3900707, "one_direction": 3.3275814, "sum_not_mean": 34.852136, "self_as_positive": 1.1467677, "cross_view_only": 2.1652907},  # noqa: E501
    (3, 8, 1.7, 2.0): {"correct": 1.1411314, "no_normalise": 0.012868004, "self_not_masked": 1.4549535, "positive_not_in_denominator": 0.75518976, "no_temperature": 0.86834899, "times_temperature": 0.51723877, "one_direction": 1.0938278, "sum_not_mean": 6.8467886, "self_as_positive": 1.3130476, "cross_view_only": 0.709065},  # noqa: E501
}

NTXENT_MISTAKES = {
    "no_normalise": "your similarities are raw dot products: the embeddings were not L2-normalised. NT-Xent uses "
                    "*cosine* similarity, so that a long vector cannot dominate and the temperature sets the "
                    "scale; normalise every row of both views first.",
    "self_not_masked": "each embedding's similarity with itself is in the softmax: the anchor was counted as one "
                       "of its own negatives. Its cosine similarity is always 1, the largest possible, so it "
                       "swamps the denominator; leave the diagonal out (2N − 1 candidates: 1 positive and "
                       "2N − 2 negatives).",
    "positive_not_in_denominator": "the positive pair is missing from the denominator. NT-Xent is a "
                                   "cross-entropy over all 2N − 1 other embeddings: the positive must be one of "
                                   "the candidates in the softmax, beside the 2N − 2 negatives.",
    "no_temperature": "the temperature is not used: divide the cosine similarities by it. A small temperature "
                      "sharpens the softmax and makes hard negatives count (SimCLR's best was about 0.1-0.5).",
    "times_temperature": "you multiplied the similarities by the temperature; divide by it.",
    "one_direction": "only the first view's embeddings are anchors. The loss is symmetric: every one of the 2N "
                     "embeddings is an anchor whose positive is its partner in the other view, and the mean "
                     "runs over all 2N.",
    "sum_not_mean": "the loss is summed over the anchors; take the mean over all 2N, so that its scale (and the "
                    "learning rate that suits it) does not depend on the batch size.",
    "self_as_positive": "the targets point at each embedding itself. The positive of row i is its other view: "
                        "row i + N for the first N rows and row i − N for the last N (once the two views are "
                        "stacked).",
    "cross_view_only": "only the other view's embeddings are in each softmax (N − 1 negatives, as in CLIP's "
                       "loss). NT-Xent also uses the other images of the anchor's *own* view as negatives: "
                       "2N − 2 negatives per anchor, from one (2N × 2N) similarity matrix.",
}


def _value(out) -> float:
    _require_scalar_tensor(out, "nt_xent", "the pretraining loop calls `.backward()` on it",
                           "the mean loss over all 2N anchors")
    return float(out.detach().double().reshape(()))


@_keep_rng
def _eval_ntxent(nt_xent) -> None:
    for (n, d, t, phase), expected in NTXENT_EXPECTED.items():
        z1, z2 = ntxent_inputs(n, d, phase)
        a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        out = nt_xent(a, b, t)
        value = _value(out)
        if not torch.equal(a.detach(), z1) or not torch.equal(b.detach(), z2):
            raise Wrong("`nt_xent` changed the embeddings passed in (an in-place operation); work on new "
                        "tensors (e.g. `F.normalize` returns one).")
        want = expected["correct"]
        if abs(value - want) > 1e-4 * max(1.0, abs(want)):
            for key, message in NTXENT_MISTAKES.items():
                got = expected[key]
                if abs(value - got) <= 1e-4 * max(1.0, abs(got)):
                    raise Wrong(message)
            raise Wrong(f"for N={n} pairs of {d}-dimensional embeddings at temperature {t} your loss is "
                        f"{value:.5g}, expected {want:.5g}. Check, in order: L2-normalise the 2N embeddings; "
                        "the (2N × 2N) matrix of cosine similarities divided by the temperature; leave out each "
                        "row's similarity with itself; the target of row i is its other view; the mean "
                        "cross-entropy over all 2N rows.")
        if out.grad_fn is None:
            raise Wrong("the loss has no autograd graph (numpy, `.item()` or `.detach()` somewhere), so it "
                        "cannot train the encoder.")
        out.reshape(()).backward()
        for name, g in (("z1", a.grad), ("z2", b.grad)):
            if g is None or not torch.isfinite(g).all():
                raise Wrong(f"no finite gradient reached `{name}`. If you mask the diagonal with -inf, do it "
                            "before the softmax (`masked_fill`), not by multiplying by a mask.")
    # the two views play symmetric roles
    z1, z2 = ntxent_inputs(5, 4, 0.7)
    if abs(_value(nt_xent(z1, z2, 0.3)) - _value(nt_xent(z2, z1, 0.3))) > 1e-5:
        raise Wrong("swapping the two views changes your loss; NT-Xent treats them symmetrically (every "
                    "embedding of both views is an anchor).")


# ---------------------------------------------------------------- q2: the lateral adapter and the progressive column

def fill_parameters(module: torch.nn.Module, offset: float) -> None:
    """Set every parameter of ``module`` (not of its ``previous`` column) from a fixed formula, by name order;
    each ``alpha`` to 0.55, 0.9, 1.25, ... so that leaving it out shows."""
    alphas = 0
    with torch.no_grad():
        for i, (name, p) in enumerate(sorted(module.named_parameters())):
            if name.startswith("previous."):
                continue
            if name.split(".")[-1] == "alpha":
                p.fill_(0.55 + 0.35 * alphas)
                alphas += 1
            else:
                values = 0.7 * torch.sin(0.83 * torch.arange(p.numel(), dtype=torch.float64) + 0.61 * i + offset)
                p.copy_(values.reshape(p.shape))


def lateral_input() -> torch.Tensor:
    """Four hidden vectors of a previous column's layer (non-negative, as after a ReLU), 5 features each."""
    i = torch.arange(20, dtype=torch.float64).reshape(4, 5)
    return 0.5 + 0.5 * torch.sin(1.1 * i + 0.4)


def column_input() -> torch.Tensor:
    i = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    return torch.cos(0.9 * i + 0.2) * 1.5


# Lateral(5, 3, hidden=4) on lateral_input(), parameters by fill_parameters(·, 2.0); then
# column 1 = ProgressiveColumn((6, 5, 5), 3) filled with offset 0.0, column 2 = ProgressiveColumn((6, 5, 5), 3,
# previous=column 1, adapter_dim=4) filled with offset 1.0, on column_input().
LATERAL_EXPECTED = {
    "correct": [[0.1000075, -0.0433179, -0.0147468], [0.0439712, -0.019046, -0.0064839], [-0.0025194, 0.0032631, -0.0039033], [-0.0351659, 0.0455476, -0.0544834]],
    "no_alpha": [[0.2179667, -0.0944115, -0.0321407], [0.1160826, -0.0502808, -0.0171172], [-0.1841064, 0.2384583, -0.2852404], [-0.2434638, 0.3153392, -0.3772042]],
    "no_relu": [[1.00466, -1.0582318, 1.0782101], [0.8534197, -0.9087613, 0.9352544], [0.6811268, -0.7449124, 0.7850509], [0.5881694, -0.6621533, 0.7151173]],
    "alpha_outside": [[0.1198817, -0.0519263, -0.0176774], [0.0638454, -0.0276544, -0.0094145], [-0.1012585, 0.1311521, -0.1568822], [-0.1339051, 0.1734366, -0.2074623]],
    "relu_after_U": [[1.00466, 0.0, 1.0782101], [0.8534197, 0.0, 0.9352544], [0.6811268, 0.0, 0.7850509], [0.5881694, 0.0, 0.7151173]],
}
COLUMN1_LOGITS = [[0.757212, 0.8839712, -0.4518175], [1.0718363, 1.2797359, -1.1884922], [0.7880171, 1.2180132, -0.8388508], [0.4489397, 0.9149592, -0.1765914]]
COLUMN_EXPECTED = {
    "correct": [[2.3274975, 0.0257791, -0.0524504], [2.028019, 1.3817081, -1.2622675], [1.5184133, 1.1905556, -0.5152026], [1.1578476, 1.2213964, -0.1292053]],
    "after_nonlinearity": [[2.6726534, -0.2448809, -0.1089697], [2.0633035, 1.1317088, -1.0309483], [1.3141833, 1.2922517, -0.4194232], [0.9824514, 1.2786625, -0.0148787]],
    "no_head_lateral": [[1.7255369, 0.766178, -0.9077837], [1.5350946, 2.0519068, -2.0884651], [0.9641257, 1.8980235, -1.3533924], [0.5015347, 1.9935332, -0.9926546]],
    "no_laterals": [[1.8042548, 0.5344686, -0.7394027], [1.1513193, 1.8631698, -1.5034173], [0.5035907, 2.0371889, -1.0412658], [0.2780723, 2.018309, -0.7956136]],
    "same_level": [[2.4062155, -0.2059304, 0.1159307], [1.6476066, 1.333867, -0.8308365], [1.0967196, 1.3412607, -0.2542235], [0.9343851, 1.2461723, 0.0678357]],
    "relu_on_output": [[2.3274975, 0.0257791, 0.0], [2.028019, 1.3817081, 0.0], [1.5184133, 1.1905556, 0.0], [1.1578476, 1.2213964, 0.0]],
    "hiddens_pre_activation": [[1.4702268, 0.839469, -0.9005846], [1.2238121, 2.6331109, -2.7979582], [1.0410528, 2.1962549, -2.057276], [0.4714478, 1.8898069, -0.787959]],
}
COLUMN_HIDDENS = [[[3.4253003, 0.5314201, 0.0, 0.0, 1.6640403], [4.0068147, 2.9029956, 0.0, 0.0, 0.0], [2.0337097, 3.663554, 0.4767516, 0.0, 0.0], [0.0, 2.2574207, 2.8192545, 0.0, 0.0]], [[1.3664249, 1.0699653, 0.0, 0.5284107, 0.0], [1.4259976, 3.6781287, 0.0, 1.1247961, 1.5638608], [0.2350229, 3.7425453, 0.0, 0.0, 2.1656349], [0.0, 3.4980918, 0.0, 0.0, 2.4403366]]]


LATERAL_MISTAKES = {
    "no_alpha": "the learned scale `alpha` is not used. Rusu et al. multiply the previous column's activations by "
                "a learned scalar before the adapter, so that the new column can turn the old features up or down "
                "as a whole (their inputs can have a very different scale from the new column's own).",
    "no_relu": "the adapter has no non-linearity between `V` and `U`: two linear maps in a row are one linear map. "
               "The adapter is a small MLP: `V`, then a ReLU, then `U`.",
    "alpha_outside": "`alpha` scales the adapter's output instead of its input. It multiplies the previous "
                     "column's activations *before* `V` (because `V` has a bias and a ReLU follows, the two are "
                     "not the same).",
    "relu_after_U": "the ReLU comes after `U` instead of between `V` and `U`. The adapter's output is added to the "
                    "next layer's pre-activation, where it may be negative; the non-linearity belongs inside the "
                    "adapter, after `V`.",
}

COLUMN_MISTAKES = {
    "after_nonlinearity": "the lateral input is added *after* the layer's ReLU. It belongs inside: the layer's "
                          "pre-activation is its own linear map of the layer below plus the adapter's output, and "
                          "the ReLU is applied to that sum.",
    "no_head_lateral": "the head gets no lateral input. The last lateral adapter (from the previous column's last "
                       "hidden layer) feeds the new column's output layer, as for every layer after the first.",
    "no_laterals": "your column ignores the previous one: no lateral input is added anywhere. Add each lateral "
                   "adapter's output to the pre-activation of the layer it feeds (and to the head's logits).",
    "same_level": "the lateral input into layer k+1 comes from the previous column's layer k+1: it must come from "
                  "the layer *below*, layer k, the same input the new column's own layer k+1 reads. The first "
                  "layer gets no lateral (both columns read the same image).",
    "hiddens_pre_activation": "the hidden activations your column passes on (and returns) are taken before the "
                              "ReLU. Return, and let the next column's adapters read, each layer's output *after* "
                              "its non-linearity.",
    "relu_on_output": "a ReLU is applied to the logits. The head's output (own linear map plus lateral) is the "
                      "logits, with no non-linearity: a ReLU would make every negative score 0.",
}


def _array(t, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise Wrong(f"{what} returned {type(t).__name__}; return a tensor.")
    return t.detach().double()


def _matches(got: torch.Tensor, want, tol: float = 1e-4) -> bool:
    want = torch.tensor(want, dtype=torch.float64)
    return got.shape == want.shape and torch.allclose(got, want, atol=tol, rtol=tol)


def _build(cls, *args, **kw):
    try:
        return cls(*args, **kw)
    except TypeError as exc:
        raise Wrong(f"building `{cls.__name__}{args}` failed ({exc}); keep the given `__init__` and its "
                    "argument names.") from None


def _check_names(module, expected: set[str], what: str) -> None:
    names = {n for n, _ in module.named_parameters() if not n.startswith("previous.")}
    if names != expected:
        raise Wrong(f"{what} has parameters {sorted(names)}, expected {sorted(expected)}: keep the given "
                    "`__init__` (the checks set the parameters by name).")


@_keep_rng
def _eval_progressive(Lateral, ProgressiveColumn) -> None:
    lateral = _build(Lateral, 5, 3, 4).double()
    _check_names(lateral, {"alpha", "V.weight", "V.bias", "U.weight"}, "`Lateral(5, 3, 4)`")
    fill_parameters(lateral, 2.0)
    h = lateral_input()
    out = _array(lateral(h), "`Lateral.forward`")
    if not _matches(out, LATERAL_EXPECTED["correct"]):
        for key, message in LATERAL_MISTAKES.items():
            if _matches(out, LATERAL_EXPECTED[key]):
                raise Wrong(message)
        raise Wrong(f"`Lateral` on fixed inputs gives {out.shape} values that differ from the expected ones. "
                    "It computes U(ReLU(V(alpha · h))): scale the previous column's activations, reduce them with "
                    "V, apply the non-linearity, map with U.")
    lateral.zero_grad()
    lateral(h).sum().backward()
    if lateral.alpha.grad is None or float(lateral.alpha.grad) == 0.0:
        raise Wrong("no gradient reaches `alpha`: use the parameter itself (not `alpha.item()` or a copy), so "
                    "that the scale is learned.")
    first = _build(ProgressiveColumn, (6, 5, 5), 3).double()
    _check_names(first, {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "head.weight",
                         "head.bias"}, "`ProgressiveColumn((6, 5, 5), 3)`")
    fill_parameters(first, 0.0)
    x = column_input()
    got = first(x)
    if isinstance(got, tuple):
        raise Wrong("without `return_hiddens` the column must return the logits alone (the training loop calls it "
                    "like any classifier).")
    got = _array(got, "a first column (no previous column)")
    if not _matches(got, COLUMN1_LOGITS):
        if _matches(got.clamp(min=0), COLUMN1_LOGITS) or (torch.tensor(COLUMN1_LOGITS).min() < 0 and got.min() >= 0):
            raise Wrong(COLUMN_MISTAKES["relu_on_output"])
        raise Wrong("a column without a previous column must be a plain MLP: each layer, then a ReLU; then the "
                    "head, with no ReLU on the logits. On fixed inputs yours differs.")
    for p in first.parameters():
        p.requires_grad_(False)
    second = _build(ProgressiveColumn, (6, 5, 5), 3, previous=first, adapter_dim=4).double()
    fill_parameters(second, 1.0)
    result = second(x, return_hiddens=True)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Wrong("with `return_hiddens=True` the column must return `(logits, hiddens)`: the logits and the "
                    "list of its hidden layers' activations (the next column's laterals read them).")
    logits, hiddens = result
    logits = _array(logits, "the second column")
    if not _matches(logits, COLUMN_EXPECTED["correct"]):
        for key, message in COLUMN_MISTAKES.items():
            if _matches(logits, COLUMN_EXPECTED[key]):
                raise Wrong(message)
        raise Wrong("the second column's logits on fixed inputs differ from the expected ones. Per layer k: its "
                    "own linear map of the column's previous hidden layer, plus (from the second layer on) the "
                    "lateral adapter applied to the previous column's hidden layer k − 1; then the ReLU. The head "
                    "adds the last adapter on the previous column's last hidden layer.")
    if not isinstance(hiddens, (list, tuple)) or len(hiddens) != 2:
        raise Wrong("`hiddens` must be a list with one tensor per hidden layer (2 for sizes (6, 5, 5)).")
    for k, (got_h, want_h) in enumerate(zip(hiddens, COLUMN_HIDDENS)):
        if not _matches(_array(got_h, "a hidden layer"), want_h):
            raise Wrong(f"hidden layer {k} is returned before its ReLU (or otherwise differs). Return the "
                        "activations after the non-linearity: they are what the next column's adapters read.")
    if not torch.allclose(_array(first(x), "the first column"), torch.tensor(COLUMN1_LOGITS, dtype=torch.float64),
                          atol=1e-4):
        raise Wrong("running the second column changed the first column's output: the previous column must only "
                    "be read.")
    logits_again = second(x)
    if isinstance(logits_again, tuple):
        raise Wrong("without `return_hiddens` the column must return the logits alone (the training loop calls it "
                    "like any classifier).")
    second.zero_grad()
    logits_again.sum().backward()
    if any(p.grad is None for n, p in second.named_parameters() if n.startswith("laterals.")):
        raise Wrong("some lateral adapter received no gradient: every adapter's output must be part of the logits.")


# ---------------------------------------------------------------- questions

q1 = Question(
    "q1", "the NT-Xent loss", ["nt_xent"], _eval_ntxent,
    hints=["Two augmented views of the same image should map close together, and away from every other "
           "image in the batch. NT-Xent turns that into a classification: for each embedding, pick out its "
           "partner among all the others.",
           "Stack the two views into 2N embeddings and compare every pair with cosine similarity (normalise "
           "first), scaled by 1/temperature. In that 2N × 2N matrix each row has one positive, one entry that "
           "must never count (which?), and 2N − 2 negatives.",
           "Per row: a softmax cross-entropy over the other 2N − 1 entries, whose correct class is the column "
           "of the same image's other view (half the batch away). Average over all 2N rows, so that both "
           "views serve as anchors."],
    why="every image in the batch acts as a negative for every other, so one batch of N images gives "
        "2N − 2 negatives per anchor for free, and the temperature decides how much the hardest ones count.")

q2 = Question(
    "q2", "the lateral connection and the progressive column", ["Lateral", "ProgressiveColumn"], _eval_progressive,
    hints=["A new column is an ordinary network for the new task, except that each of its layers after the first "
           "also reads what the old, frozen column computed one level below, through a small trainable adapter.",
           "The adapter scales the old activations by its learned alpha, reduces them with V, applies a ReLU and "
           "maps them with U. In the column, that contribution joins the layer's own linear map *before* the "
           "layer's ReLU; the head receives one too, and the logits get no ReLU.",
           "First ask the previous column (if any) for its hidden activations. Then walk through the layers: the "
           "layer's own map of the running hidden vector, plus, from the second layer on, the adapter applied to "
           "the previous column's activation one layer lower; ReLU; keep it in the list. Finish with the head "
           "plus the last adapter, and return the logits (and the list when asked)."],
    why="the old column is never updated, so the first task's accuracy is kept exactly, while the new column "
        "reuses its features through the adapters; the price is a new column (and adapters) per task.")

questions = QuestionSet(q1, q2)
check, hint, grade = questions.check, questions.hint, questions.grade

__all__ = ["q1", "q2", "questions", "check", "hint", "grade", "NotAttempted", "ntxent_inputs"]
