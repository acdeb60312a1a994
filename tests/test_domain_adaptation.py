"""tlcourse.methods.adapt and tlcourse.lessons.domain_adaptation: preprocessing, the DANN pieces, the matching losses, importance weights and
the training loops (tiny runs on synthetic domains, so the whole file takes seconds)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tlcourse.lessons import domain_adaptation as adapt
from tlcourse.lessons.domain_adaptation import (DomainPair, embed, preprocess, summarize, target_accuracy, train_dann,
                                                train_matching, train_oracle, train_source_only)
from tlcourse.methods.adapt import (CorrelationAlignmentLoss, DomainAdversarialLoss, DomainClassifier,
                                    GradientReverseLayer, MMDLoss, dann_lambda, dann_learning_rate,
                                    importance_weights)


# ---------------------------------------------------------------- preprocessing

def test_preprocess_crops_then_resizes():
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 4:24, 4:24] = 1.0  # a full 20x20 box inside the 4 px border, like MNIST's digit box
    naive, cropped = preprocess(x, 16, crop=0), preprocess(x, 16, crop=4)
    assert naive.shape == cropped.shape == (2, 1, 16, 16)
    assert cropped.min() > 0.99  # the box fills the cropped frame
    assert naive[..., 0, 0].max() < 0.01 and naive.mean() < 0.7  # naive keeps the empty margin
    assert preprocess(torch.rand(3, 1, 8, 8), 16).shape == (3, 1, 16, 16)
    y = preprocess(torch.rand(3, 1, 8, 8), 16)
    assert y.min() >= 0 and y.max() <= 1


def _pair(n_s: int = 96, n_t: int = 64, size: int = 8, seed: int = 0) -> DomainPair:
    """Synthetic domains: class = which quadrant is bright; the target is blurred, darker and offset."""
    g = torch.Generator().manual_seed(seed)

    def make(n, dark, shift):
        y = torch.randint(0, 4, (n,), generator=g)
        x = torch.rand(n, 1, size, size, generator=g) * 0.2
        h = size // 2
        for i, c in enumerate(y.tolist()):
            r, s = divmod(c, 2)
            x[i, :, r * h:(r + 1) * h, s * h:(s + 1) * h] += 0.8
        return (x * dark + shift).clamp(0, 1), y

    xs, ys = make(n_s, 1.0, 0.0)
    xst, yst = make(32, 1.0, 0.0)
    xt, yt = make(n_t, 0.6, 0.2)
    xtt, ytt = make(32, 0.6, 0.2)
    return DomainPair(xs, ys, xst, yst, xt, yt, xtt, ytt, size, 0)


# ---------------------------------------------------------------- DANN pieces

def test_gradient_reverse_layer_is_identity_forward_and_negates_scaled_backward():
    grl = GradientReverseLayer(coeff=0.3)
    x = torch.randn(5, 4, requires_grad=True)
    y = grl(x)
    assert torch.equal(y, x)
    g = torch.randn(5, 4)
    y.backward(g)
    assert torch.allclose(x.grad, -0.3 * g)
    grl.coeff = 2.0
    x.grad = None
    grl(x).backward(g)
    assert torch.allclose(x.grad, -2.0 * g)


def test_dann_lambda_schedule_matches_the_paper():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    values = [dann_lambda(p / 20) for p in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert dann_lambda(2.0) == dann_lambda(1.0) and dann_lambda(-1) == 0.0  # clamped progress
    assert dann_lambda(1.0, max_value=0.5) == pytest.approx(0.5 * dann_lambda(1.0))
    assert dann_learning_rate(0.0) == 0.01
    assert dann_learning_rate(1.0) == pytest.approx(0.01 / 11 ** 0.75)


def test_domain_adversarial_loss_trains_the_classifier_and_reverses_into_features():
    torch.manual_seed(0)
    disc = DomainClassifier(6, hidden=8)
    adv = DomainAdversarialLoss(disc, coeff=0.5)
    f_s = torch.randn(10, 6, requires_grad=True)
    f_t = torch.randn(10, 6, requires_grad=True)
    loss = adv(f_s, f_t)
    d = disc(torch.cat([f_s, f_t])).squeeze(1)
    want = F.binary_cross_entropy_with_logits(d, torch.cat([torch.ones(10), torch.zeros(10)]))
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)  # source = 1, target = 0
    assert 0.0 <= adv.domain_acc <= 1.0
    grads_rev = torch.autograd.grad(loss, [f_s, disc.net[0].weight])
    grads_ref = torch.autograd.grad(want, [f_s, disc.net[0].weight])
    assert torch.allclose(grads_rev[0], -0.5 * grads_ref[0], atol=1e-6)  # features: reversed, scaled
    assert torch.allclose(grads_rev[1], grads_ref[1], atol=1e-6)  # the classifier itself: ordinary gradient


# ---------------------------------------------------------------- matching losses

def test_coral_loss_formula_and_invariances():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 5, generator=g), torch.randn(25, 5, generator=g) * 2
    coral = CorrelationAlignmentLoss()
    want = ((torch.cov(a.T) - torch.cov(b.T)) ** 2).sum() / (4 * 25)
    assert coral(a, b).item() == pytest.approx(want.item(), rel=1e-5)
    assert coral(a, a + 7.0).item() == pytest.approx(0.0, abs=1e-6)  # centred: shifts do not count
    assert coral(a, 2 * a).item() == pytest.approx((9 * torch.cov(a.T) ** 2).sum().item() / 100, rel=1e-4)


def test_mmd_is_zero_for_identical_samples_and_grows_with_shift():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(30, 4, generator=g)
    mmd = MMDLoss()
    assert mmd(a, a.clone()).item() == pytest.approx(0.0, abs=1e-6)
    near = mmd(a, torch.randn(30, 4, generator=g)).item()
    far = mmd(a, torch.randn(30, 4, generator=g) + 3.0).item()
    assert far > near >= -1e-6


def test_importance_weights_favour_target_like_source_images():
    g = torch.Generator().manual_seed(2)
    source = torch.cat([torch.randn(100, 1, 2, 2, generator=g) - 1.0, torch.randn(100, 1, 2, 2, generator=g) + 1.0])
    target = torch.randn(100, 1, 2, 2, generator=g) + 1.0
    w, acc = importance_weights(source, target, C=1.0, clip=50.0)
    assert w.shape == (200,) and w.mean().item() == pytest.approx(1.0, rel=1e-5)
    assert w[100:].mean() > 3 * w[:100].mean()  # the half that looks like the target counts more
    assert 0.5 < acc <= 1.0
    w_clipped, _ = importance_weights(source, target, C=1.0, clip=2.0)
    assert w_clipped.max() / w_clipped.min() <= w.max() / w.min()


# ---------------------------------------------------------------- loops

def test_loops_run_are_seeded_and_learn_the_source_task():
    pair = _pair()
    kw = dict(epochs=25, batch_size=32, width=4, lr=1e-2)
    m1 = train_source_only(pair, seed=0, **kw)
    m2 = train_source_only(pair, seed=0, **kw)
    assert all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert target_accuracy(m1, pair.source_test_x, pair.source_test_y) > 0.6
    assert not m1.training
    oracle = train_oracle(pair, seed=0, **kw)
    assert target_accuracy(oracle, pair.target_test_x, pair.target_test_y) > 0.6
    w = torch.ones(len(pair.source_y))
    mw = train_source_only(pair, seed=0, weights=w, **kw)  # unit weights = unweighted
    assert all(torch.allclose(p, q, atol=1e-5) for p, q in zip(m1.state_dict().values(), mw.state_dict().values()))


def test_train_dann_calls_the_given_step_with_the_schedule():
    pair = _pair()
    calls = []

    def step(fe, clf, disc, opt, x_s, y_s, x_t, lambd):
        calls.append((x_s.shape[0], x_t.shape[0], lambd, isinstance(disc, DomainClassifier)))
        return adapt._default_dann_step(fe, clf, disc, opt, x_s, y_s, x_t, lambd)

    model, log = train_dann(pair, epochs=2, seed=0, batch_size=16, width=4, step=step)
    assert len(calls) == len(log["lambda"]) == round(2 * 96 / 16)
    assert all(n_s == n_t == 16 and ok for n_s, n_t, _, ok in calls)
    lambdas = [c[2] for c in calls]
    assert lambdas[0] == 0.0 and all(a < b for a, b in zip(lambdas, lambdas[1:]))
    assert not any(math.isnan(v) for v in log["domain_loss"])
    assert embed(model, pair.target_test_x).shape == (32, model.feature_dim)


def test_train_dann_with_the_library_step_learns_the_source_task():
    pair = _pair()
    model, log = train_dann(pair, epochs=25, seed=0, batch_size=32, width=4, lr=1e-2)
    assert target_accuracy(model, pair.source_test_x, pair.source_test_y) > 0.6
    assert len(log["cls_loss"]) == len(log["domain_loss"]) > 0


def test_train_matching_accepts_any_loss_and_logs_it():
    pair = _pair()
    seen = []

    def loss_fn(f_s, f_t):
        seen.append((f_s.shape, f_t.shape))
        return CorrelationAlignmentLoss()(f_s, f_t)

    model, log = train_matching(pair, loss_fn, trade_off=10.0, epochs=1, seed=0, batch_size=32, width=4)
    assert len(seen) == len(log["match_loss"]) == 3
    assert seen[0] == (torch.Size([32, 16]), torch.Size([32, 16]))
    model, log = train_matching(pair, MMDLoss(), epochs=1, seed=0, batch_size=32, width=4)
    assert all(v >= -1e-6 for v in log["match_loss"])


def test_summarize_table():
    table = summarize({"a": [0.5, 0.7], "b": [0.9]})
    assert "| a | 0.600 ± 0.100 | 0.500 | 2 |" in table and "| b | 0.900 ± 0.000" in table


def test_load_domain_pair_real_data():
    pair = adapt.load_domain_pair(16, source_crop=4)
    assert pair.source_x.shape == (4000, 1, 16, 16) and pair.target_x.shape[1:] == (1, 16, 16)
    assert len(pair.target_y) + len(pair.target_test_y) == 1797
    assert 0 <= pair.source_x.min() and pair.source_x.max() <= 1
    naive = adapt.load_domain_pair(16, source_crop=0, n_source=100)
    assert naive.source_x.shape[0] == 100
    # the crop makes MNIST's ink cover about as much of the frame as the digits' ink
    ink = lambda x: (x > 0.3).float().mean().item()
    assert abs(ink(pair.source_x) - ink(pair.target_x)) < abs(ink(naive.source_x) - ink(pair.target_x))


def test_pixel_baseline_and_raw_cache():
    pair = _pair()
    src_acc, tgt_acc = adapt.pixel_baseline(pair, steps=100)
    assert src_acc > 0.9 and 0.0 <= tgt_acc <= 1.0
    assert adapt.load_raw_domains() is adapt.load_raw_domains()  # parsed once per process
