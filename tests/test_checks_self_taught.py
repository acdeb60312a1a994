"""The notebook-08 checks accept correct answers written different ways, reject each plausible mistake
with a message that names it, and their stored numbers still match the reference written here."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tlcourse.checks.self_taught import NTXENT_EXPECTED, ntxent_inputs, q1


# ---------------------------------------------------------------- q1: NT-Xent, reference and mistakes

def _masked(sim):
    return sim.masked_fill(torch.eye(len(sim), dtype=torch.bool), float("-inf"))


def _pos(n):
    return torch.cat([torch.arange(n, 2 * n), torch.arange(n)])


def ntxent_variants(z1, z2, t) -> dict[str, torch.Tensor]:
    """The reference loss and the loss of each mistake the check names."""
    n = len(z1)
    zn = F.normalize(torch.cat([z1, z2]), dim=1)
    zr = torch.cat([z1, z2])
    pos = _pos(n)
    s = _masked(zn @ zn.T / t)
    p = s[torch.arange(2 * n), pos]
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    clip = a @ b.T / t
    return {
        "correct": F.cross_entropy(s, pos),
        "no_normalise": F.cross_entropy(_masked(zr @ zr.T / t), pos),
        "self_not_masked": F.cross_entropy(zn @ zn.T / t, pos),
        "positive_not_in_denominator": (-p + torch.logsumexp(
            s.masked_fill(F.one_hot(pos, 2 * n).bool(), float("-inf")), 1)).mean(),
        "no_temperature": F.cross_entropy(_masked(zn @ zn.T), pos),
        "times_temperature": F.cross_entropy(_masked(zn @ zn.T * t), pos),
        "one_direction": F.cross_entropy(s[:n], pos[:n]),
        "sum_not_mean": F.cross_entropy(s, pos, reduction="sum"),
        "self_as_positive": F.cross_entropy(zn @ zn.T / t, torch.arange(2 * n)),
        "cross_view_only": (F.cross_entropy(clip, torch.arange(n)) + F.cross_entropy(clip.T, torch.arange(n))) / 2,
    }


def test_stored_numbers_match_the_reference():
    for (n, d, t, phase), stored in NTXENT_EXPECTED.items():
        z1, z2 = ntxent_inputs(n, d, phase)
        now = {k: float(v) for k, v in ntxent_variants(z1.double(), z2.double(), t).items()}
        assert now.keys() == stored.keys()
        for key in now:
            assert now[key] == pytest.approx(stored[key], rel=1e-5), key
        # every mistake is told apart from the right answer on at least one case
    for key in next(iter(NTXENT_EXPECTED.values())):
        if key != "correct":
            assert any(abs(v[key] - v["correct"]) > 1e-3 for v in NTXENT_EXPECTED.values()), key


def ntxent_matrix(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def ntxent_explicit(z1, z2, temperature):
    # log-softmax written out, the diagonal pushed away with a large negative number, the halves averaged
    n = len(z1)
    z = torch.cat([z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)])
    sim = z @ z.T / temperature - 1e9 * torch.eye(2 * n)
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    idx = torch.arange(n)
    return -(logp[idx, idx + n].mean() + logp[idx + n, idx].mean()) / 2


def ntxent_loop(z1, z2, temperature):
    # one anchor at a time, as the SimCLR paper's pseudo-code
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = len(z)
    losses = []
    for i in range(n2):
        j = (i + n2 // 2) % n2
        others = torch.cat([z[:i], z[i + 1:]])
        num = torch.exp(z[i] @ z[j] / temperature)
        losses.append(-torch.log(num / torch.exp(others @ z[i] / temperature).sum()))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("fn", [ntxent_matrix, ntxent_explicit, ntxent_loop])
def test_q1_accepts_correct_losses(fn):
    v = q1.verdict(fn)
    assert v.correct, v.message


def _mistake(key):
    return lambda z1, z2, t: ntxent_variants(z1, z2, t)[key]


WRONG = {
    "no_normalise": "normalised",
    "self_not_masked": "itself",
    "positive_not_in_denominator": "denominator",
    "no_temperature": "temperature is not used",
    "times_temperature": "divide by it",
    "one_direction": "symmetric",
    "sum_not_mean": "mean over all 2N",
    "self_as_positive": "other view",
    "cross_view_only": "own* view",
}


@pytest.mark.parametrize("key", WRONG)
def test_q1_names_each_mistake(key):
    v = q1.verdict(_mistake(key))
    assert v.status == "wrong", key
    assert WRONG[key] in v.message, v.message


def test_q1_rejects_a_detached_a_vector_and_a_non_tensor_loss():
    v = q1.verdict(lambda z1, z2, t: ntxent_matrix(z1, z2, t).detach())
    assert v.status == "wrong" and "autograd" in v.message
    v = q1.verdict(lambda z1, z2, t: torch.stack([ntxent_matrix(z1, z2, t)] * 2))
    assert v.status == "wrong" and "scalar" in v.message
    v = q1.verdict(lambda z1, z2, t: ntxent_matrix(z1, z2, t).item())
    assert v.status == "wrong" and "scalar torch tensor" in v.message


def test_q1_rejects_an_in_place_edit_and_an_unknown_error():
    def in_place(z1, z2, t):
        z1 /= z1.norm(dim=1, keepdim=True)
        return ntxent_matrix(z1, z2, t)

    v = q1.verdict(lambda z1, z2, t: in_place(z1.detach(), z2, t))
    assert v.status == "wrong" and "in-place" in v.message
    v = q1.verdict(lambda z1, z2, t: ntxent_matrix(z1, z2, t) * 1.5)
    assert v.status == "wrong" and "expected" in v.message


def test_q1_not_attempted():
    def nt_xent(z1, z2, temperature):
        raise NotImplementedError()

    assert q1.verdict(nt_xent).status == "not_attempted"


# ---------------------------------------------------------------- q2: the lateral adapter and the column

from torch import nn  # noqa: E402

from tlcourse.checks.self_taught import (COLUMN1_LOGITS, COLUMN_EXPECTED, COLUMN_HIDDENS,  # noqa: E402
                                         LATERAL_EXPECTED, column_input, fill_parameters, lateral_input, q2)


def make_lateral(variant="correct"):
    class Lateral(nn.Module):
        def __init__(self, in_features, out_features, hidden=16):
            super().__init__()
            self.alpha = nn.Parameter(torch.tensor(1.0))
            self.V = nn.Linear(in_features, hidden)
            self.U = nn.Linear(hidden, out_features, bias=False)

        def forward(self, h):
            if variant == "no_alpha":
                return self.U(F.relu(self.V(h)))
            if variant == "no_relu":
                return self.U(self.V(self.alpha * h))
            if variant == "alpha_outside":
                return self.alpha * self.U(F.relu(self.V(h)))
            if variant == "relu_after_U":
                return F.relu(self.U(self.V(self.alpha * h)))
            if variant == "alpha_item":
                return self.U(F.relu(self.V(self.alpha.item() * h)))
            return self.U(F.relu(self.V(self.alpha * h)))
    return Lateral


def make_column(variant="correct", lateral=None):
    Lateral = lateral or make_lateral()

    class ProgressiveColumn(nn.Module):
        def __init__(self, sizes, num_classes, previous=None, adapter_dim=16):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.head = nn.Linear(sizes[-1], num_classes)
            self.previous = previous
            self.laterals = nn.ModuleList()
            if previous is not None:
                outs = list(sizes[2:]) + [num_classes]
                self.laterals = nn.ModuleList(Lateral(a, b, adapter_dim) for a, b in zip(sizes[1:], outs))

        def forward(self, x, return_hiddens=False):
            v = variant
            prev = self.previous(x, return_hiddens=True)[1] if self.previous is not None else None
            h, hiddens = x.flatten(1), []
            for k, layer in enumerate(self.layers):
                a = layer(h)
                lat = 0
                if prev is not None and k > 0 and v != "no_laterals":
                    lat = self.laterals[k - 1](prev[k] if v == "same_level" else prev[k - 1])
                h = F.relu(a) + lat if v == "after_nonlinearity" else F.relu(a + lat)
                hiddens.append(a + lat if v == "hiddens_pre_activation" else h)
            out = self.head(h)
            if prev is not None and v not in ("no_head_lateral", "no_laterals"):
                out = out + self.laterals[-1](prev[-1])
            if v == "relu_on_output":
                out = F.relu(out)
            if v == "always_tuple":
                return out, hiddens
            return (out, hiddens) if return_hiddens else out
    return ProgressiveColumn


def test_q2_stored_numbers_match_the_reference():
    for key, want in LATERAL_EXPECTED.items():
        lat = make_lateral(key)(5, 3, 4).double()
        fill_parameters(lat, 2.0)
        assert torch.allclose(lat(lateral_input()).detach(), torch.tensor(want, dtype=torch.float64), atol=1e-6), key
    for key, want in COLUMN_EXPECTED.items():
        cls = make_column(key)
        first = cls((6, 5, 5), 3).double()
        fill_parameters(first, 0.0)
        second = cls((6, 5, 5), 3, previous=first, adapter_dim=4).double()
        fill_parameters(second, 1.0)
        out, hiddens = second(column_input(), return_hiddens=True)
        assert torch.allclose(out.detach(), torch.tensor(want, dtype=torch.float64), atol=1e-6), key
        if key == "correct":
            assert torch.allclose(first(column_input()).detach(), torch.tensor(COLUMN1_LOGITS, dtype=torch.float64),
                                  atol=1e-6)
            for h, w in zip(hiddens, COLUMN_HIDDENS):
                assert torch.allclose(h.detach(), torch.tensor(w, dtype=torch.float64), atol=1e-6)
        else:
            assert not torch.allclose(out.detach(), torch.tensor(COLUMN_EXPECTED["correct"], dtype=torch.float64),
                                      atol=1e-3), key


def _column_written_differently():
    Lateral = make_lateral()

    class Lateral2(Lateral):
        def forward(self, h):  # alpha applied to V's input through the weight: same map
            return self.U(torch.clamp(F.linear(h * self.alpha, self.V.weight, self.V.bias), min=0))

    class ProgressiveColumn(make_column("correct", Lateral2)):
        def forward(self, x, return_hiddens=False):
            h = x.reshape(len(x), -1)
            prev = None if self.previous is None else self.previous.forward(x, True)[1]
            hs = []
            for k in range(len(self.layers)):
                z = self.layers[k](h)
                if prev is not None and k >= 1:
                    z = z + self.laterals[k - 1](prev[k - 1])
                h = z.relu()
                hs = hs + [h]
            y = self.head(h) + (self.laterals[len(self.laterals) - 1](prev[-1]) if prev is not None else 0)
            if return_hiddens:
                return y, hs
            return y
    return Lateral2, ProgressiveColumn


@pytest.mark.parametrize("pair", [(make_lateral(), make_column()), _column_written_differently()],
                         ids=["reference", "written differently"])
def test_q2_accepts_correct_answers(pair):
    v = q2.verdict(*pair)
    assert v.correct, v.message


LATERAL_WRONG = {"no_alpha": "alpha` is not used", "no_relu": "no non-linearity", "alpha_outside": "output instead",
                 "relu_after_U": "after `U`", "alpha_item": "no gradient reaches `alpha`"}
COLUMN_WRONG = {"after_nonlinearity": "*after* the layer's ReLU", "no_head_lateral": "head gets no lateral",
                "no_laterals": "ignores the previous one", "same_level": "layer *below*",
                "relu_on_output": "ReLU is applied to the logits", "hiddens_pre_activation": "before the ReLU",
                "always_tuple": "logits alone"}


@pytest.mark.parametrize("key", LATERAL_WRONG)
def test_q2_names_each_adapter_mistake(key):
    v = q2.verdict(make_lateral(key), make_column("correct", make_lateral(key)))
    assert v.status == "wrong" and LATERAL_WRONG[key] in v.message, v.message


@pytest.mark.parametrize("key", COLUMN_WRONG)
def test_q2_names_each_column_mistake(key):
    v = q2.verdict(make_lateral(), make_column(key))
    assert v.status == "wrong" and COLUMN_WRONG[key] in v.message, v.message


def test_q2_rejects_a_changed_init_and_not_attempted():
    class Renamed(make_lateral()):
        def __init__(self, i, o, hidden=16):
            nn.Module.__init__(self)
            self.scale = nn.Parameter(torch.tensor(1.0))
            self.V = nn.Linear(i, hidden)
            self.U = nn.Linear(hidden, o, bias=False)

    v = q2.verdict(Renamed, make_column())
    assert v.status == "wrong" and "keep the given" in v.message

    class Stub(make_lateral()):
        def forward(self, h):
            raise NotImplementedError()

    assert q2.verdict(Stub, make_column()).status == "not_attempted"
