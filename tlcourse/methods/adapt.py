"""Domain-adaptation methods, one concept each, after the Transfer-Learning-Library (TLlib).

- :class:`GradientReverseLayer` and :func:`dann_lambda` (its schedule), :class:`DomainClassifier`,
  :class:`DomainAdversarialLoss`: DANN (Ganin & Lempitsky, 2015);
- :class:`CorrelationAlignmentLoss`: Deep CORAL (Sun & Saenko, 2016);
- :class:`MMDLoss`: Gaussian multi-kernel MMD (Gretton et al., 2012; Long et al., 2015);
- :func:`importance_weights`: instance-based transfer by density-ratio weights.

Each takes tensors and returns tensors: no data loading, training loops or
plots here (notebook 05's live in :mod:`tlcourse.lessons.domain_adaptation`).
Notebook 05 asks students to write the gradient reversal, the CORAL loss and
one DANN step themselves.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SOURCE, TARGET = 1, 0  # domain labels used throughout: source = 1, target = 0

# ---------------------------------------------------------------- DANN pieces

class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.neg() * ctx.coeff, None


class GradientReverseLayer(nn.Module):
    r"""The gradient reversal layer (GRL) of `Domain-Adversarial Training of Neural Networks (ICML 2015)
    <https://arxiv.org/abs/1409.7495>`_.

    The identity in the forward pass; in the backward pass it multiplies the
    incoming gradient by :math:`-\lambda`:

    .. math::
        R_\lambda(x) = x, \qquad \frac{\partial R_\lambda}{\partial x} = -\lambda I.

    Placed between the feature extractor and the domain classifier, it lets
    one ``backward()`` train the classifier to *separate* the domains while
    pushing the features to *confuse* it.

    Args:
        coeff (float): :math:`\lambda`; can be changed between steps (``grl.coeff = ...``).

    Inputs / outputs: any tensor; the output equals the input.

    Usage::

        grl = GradientReverseLayer(); grl.coeff = dann_lambda(step / total_steps)
        domain_logits = domain_classifier(grl(features))
    """

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGrad.apply(x, self.coeff)


def dann_lambda(progress: float, gamma: float = 10.0, max_value: float = 1.0) -> float:
    r"""The adaptation factor schedule of Ganin & Lempitsky (2015):

    .. math::
        \lambda_p = \frac{2}{1 + \exp(-\gamma p)} - 1,

    with :math:`p \in [0, 1]` the training progress and :math:`\gamma = 10`.
    It rises from 0 to ``max_value``, so the domain classifier's noisy early
    gradients do not disturb the feature extractor.

    >>> round(dann_lambda(0.0), 3), round(dann_lambda(0.5), 3), round(dann_lambda(1.0), 3)
    (0.0, 0.987, 1.0)
    """
    p = min(max(float(progress), 0.0), 1.0)
    return max_value * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def dann_learning_rate(progress: float, lr0: float = 0.01, alpha: float = 10.0, beta: float = 0.75) -> float:
    r"""The learning-rate annealing of Ganin & Lempitsky (ICML 2015), :math:`\mu_p = \mu_0 / (1 + \alpha p)^\beta`,
    with :math:`p \in [0, 1]` the training progress.

    >>> round(dann_learning_rate(0.0), 4), round(dann_learning_rate(1.0), 4)
    (0.01, 0.0017)
    """
    return lr0 / (1.0 + alpha * float(progress)) ** beta


class DomainClassifier(nn.Module):
    r"""The domain classifier (discriminator) :math:`D`: features → one logit, high for source.

    A 2-layer MLP as in TLlib's ``DomainDiscriminator``:
    ``Linear(in, h) → BN → ReLU → Linear(h, h) → BN → ReLU → Linear(h, 1)``.
    :math:`\sigma(D(f))` estimates :math:`P(\text{source} \mid f)`; the course labels
    source as 1 and target as 0. The discriminator of DANN (Ganin & Lempitsky, ICML 2015).

    Inputs: features (N, in_features), N >= 2 in training mode (BatchNorm). Output: logits (N, 1).

    Usage::

        disc = DomainClassifier(model.feature_dim)
        logits = disc(features)            # (N, 1)
    """

    def __init__(self, in_features: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class DomainAdversarialLoss(nn.Module):
    r"""The domain-adversarial loss of `DANN (Ganin & Lempitsky, ICML 2015) <https://arxiv.org/abs/1409.7495>`_.

    With a domain classifier :math:`D`, a gradient reversal layer :math:`R_\lambda`,
    source features :math:`f_s` (domain label 1) and target features :math:`f_t` (label 0):

    .. math::
        \mathcal{L}_{adv} = \tfrac12\,\mathbb{E}_{f_s}\big[-\log \sigma(D(R_\lambda(f_s)))\big]
                          + \tfrac12\,\mathbb{E}_{f_t}\big[-\log (1 - \sigma(D(R_\lambda(f_t))))\big]

    (the mean binary cross-entropy over all :math:`n_s + n_t` predictions
    when :math:`n_s = n_t`). Minimising it trains :math:`D` to tell the domains
    apart; through :math:`R_\lambda` the feature extractor receives
    :math:`-\lambda` times that gradient and learns domain-invariant features.

    Args:
        domain_classifier (nn.Module): features → one logit (source = 1).
        coeff (float): :math:`\lambda`, settable per step as ``loss.grl.coeff``.

    Inputs: ``f_s`` (N, F), ``f_t`` (M, F). Output: a scalar. ``.domain_acc``
    holds the classifier's accuracy on the last call.

    Usage::

        adv = DomainAdversarialLoss(DomainClassifier(64))
        adv.grl.coeff = dann_lambda(p)
        loss = F.cross_entropy(classifier(f_s), y_s) + adv(f_s, f_t)
    """

    def __init__(self, domain_classifier: nn.Module, coeff: float = 1.0):
        super().__init__()
        self.domain_classifier = domain_classifier
        self.grl = GradientReverseLayer(coeff)
        self.domain_acc = float("nan")

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        d = self.domain_classifier(self.grl(torch.cat([f_s, f_t]))).squeeze(1)
        labels = torch.cat([torch.full((len(f_s),), float(SOURCE)), torch.full((len(f_t),), float(TARGET))])
        labels = labels.to(d.device)
        self.domain_acc = float(((d > 0).float() == labels).float().mean())
        return F.binary_cross_entropy_with_logits(d, labels)


# ---------------------------------------------------------------- statistics matching

class CorrelationAlignmentLoss(nn.Module):
    r"""The CORAL loss of `Deep CORAL (Sun & Saenko, ECCV 2016 workshops) <https://arxiv.org/abs/1607.01719>`_.

    With :math:`d`-dimensional source features :math:`D_S` (:math:`n_S \times d`) and
    target features :math:`D_T`, and the centred (unbiased) covariances

    .. math::
        C_S = \frac{1}{n_S - 1}\Big(D_S^\top D_S - \frac{1}{n_S}(\mathbf 1^\top D_S)^\top(\mathbf 1^\top D_S)\Big),

    and likewise :math:`C_T`, the loss is

    .. math::
        \ell_{CORAL} = \frac{1}{4d^2}\,\lVert C_S - C_T \rVert_F^2 .

    Inputs: ``f_s`` (N, d), ``f_t`` (M, d). Output: a scalar.

    Usage::

        coral = CorrelationAlignmentLoss()
        loss = F.cross_entropy(classifier(f_s), y_s) + trade_off * coral(f_s, f_t)
    """

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        d = f_s.shape[1]

        def cov(f):
            c = f - f.mean(0, keepdim=True)
            return c.T @ c / (len(f) - 1)

        return (cov(f_s) - cov(f_t)).pow(2).sum() / (4 * d * d)


class MMDLoss(nn.Module):
    r"""Squared maximum mean discrepancy with a sum of Gaussian kernels (`Gretton et al., JMLR 2012
    <https://jmlr.org/papers/v13/gretton12a.html>`_; the multi-kernel form of DAN, Long et al., ICML 2015).

    .. math::
        \widehat{\mathrm{MMD}}^2 = \frac{1}{n^2}\sum_{i,j} k(x_i, x_j) + \frac{1}{m^2}\sum_{i,j} k(y_i, y_j)
                                 - \frac{2}{nm}\sum_{i,j} k(x_i, y_j),\qquad
        k(a, b) = \sum_{u} \exp\!\Big(-\frac{\lVert a - b\rVert^2}{2\sigma_u^2}\Big)

    (the biased estimator). The bandwidths are :math:`\sigma_u^2 = \text{mult}_u \cdot
    \bar\sigma^2` with :math:`\bar\sigma^2` the mean pairwise squared distance of
    the batch (detached), a common heuristic.

    Args:
        multipliers: the bandwidth multipliers, default ``(0.25, 0.5, 1, 2, 4)``.

    Inputs: ``f_s`` (N, d), ``f_t`` (M, d). Output: a scalar (0 when both batches are the same).

    Usage::

        loss = F.cross_entropy(classifier(f_s), y_s) + trade_off * MMDLoss()(f_s, f_t)
    """

    def __init__(self, multipliers=(0.25, 0.5, 1.0, 2.0, 4.0)):
        super().__init__()
        self.multipliers = tuple(multipliers)

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        n = len(f_s)
        z = torch.cat([f_s, f_t])
        d2 = torch.cdist(z, z).pow(2)
        base = d2.detach().sum() / (len(z) ** 2 - len(z))
        k = sum(torch.exp(-d2 / (2 * m * base + 1e-12)) for m in self.multipliers)
        return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


# ---------------------------------------------------------------- instance weighting

def importance_weights(source_x: torch.Tensor, target_x: torch.Tensor, C: float = 0.1,
                       clip: float = 10.0, seed: int = 0) -> tuple[torch.Tensor, float]:
    r"""Density-ratio weights for the source examples from a domain classifier.

    A logistic regression on the pixels estimates :math:`P(\text{target}\mid x)`; by Bayes,

    .. math::
        w(x) = \frac{p_T(x)}{p_S(x)} = \frac{P(T\mid x)}{P(S\mid x)}\cdot\frac{n_S}{n_T}.

    Weights are clipped to ``clip`` and rescaled to mean 1 (extreme ratios
    otherwise let a handful of images dominate the loss). Returns the weights
    (N_source,) and the domain classifier's held-out accuracy (cross-validated
    on two folds), which says how separable the domains are: 0.5 means
    indistinguishable, near 1 means the weights will be extreme.

    Importance weighting under covariate shift: Shimodaira (2000); the density
    ratio from a domain classifier: Bickel, Brückner & Scheffer (ICML 2007).

    Inputs: ``source_x`` (N, ...) and ``target_x`` (M, ...), flattened to pixels.

    Usage::

        w, domain_acc = importance_weights(pair.source_x, pair.target_x)
        loss = (F.cross_entropy(model(x_s), y_s, reduction="none") * w[idx]).sum() / w[idx].sum()
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    xs, xt = source_x.flatten(1).numpy(), target_x.flatten(1).numpy()
    x = np.concatenate([xs, xt])
    d = np.concatenate([np.zeros(len(xs)), np.ones(len(xt))])  # 1 = target here: we want P(T | x)
    clf = LogisticRegression(C=C, max_iter=500, random_state=seed)
    acc = float(cross_val_score(clf, x, d, cv=StratifiedKFold(2, shuffle=True, random_state=seed)).mean())
    p_t = np.clip(clf.fit(x, d).predict_proba(xs)[:, 1], 1e-6, 1 - 1e-6)
    w = np.minimum(p_t / (1 - p_t) * len(xs) / len(xt), clip)
    w = w / w.mean()
    return torch.as_tensor(w, dtype=torch.float32), acc
