"""Continual-learning methods, one concept each.

- :class:`ElasticWeightConsolidation`: EWC's quadratic penalty (Kirkpatrick et al.,
  2017), built from a network trained on the old task and the diagonal of its
  Fisher information.

Progressive networks (Rusu et al., 2016) are notebook 08's graded exercise, so
the package has none. The loops that use this penalty live in
:mod:`tlcourse.lessons.self_taught`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class ElasticWeightConsolidation(nn.Module):
    r"""The penalty of `Overcoming catastrophic forgetting in neural networks (PNAS 2017)
    <https://arxiv.org/abs/1612.00796>`_, which ties each weight to its value after the old task A,
    in proportion to how much A's log-likelihood depends on it:

    .. math::
        \Omega(\theta) = \frac{\lambda}{2} \sum_i F_i \,\big(\theta_i - \theta^{*}_{A,i}\big)^2,
        \qquad F_i = \frac{1}{N} \sum_{n=1}^{N}
        \Big(\frac{\partial \log p_{\theta^*_A}(y_n \mid x_n)}{\partial \theta_i}\Big)^2

    :math:`F` is the diagonal of the (empirical) Fisher information at the old
    weights :math:`\theta^*_A`, estimated from ``N`` labelled examples of task A,
    one gradient per example. Add :math:`\Omega` to task B's loss: weights A
    barely uses stay free (plasticity), weights A depends on are held
    (stability), and ``strength`` (:math:`\lambda`) sets the balance.

    Args:
        old_model (nn.Module): the network after task A; its parameters are copied (the anchor).
        x, y: examples of task A, inputs (N, ...) and int64 labels (N,), for the Fisher estimate.
        strength (float): :math:`\lambda`.
        skip (tuple[str]): parameter-name prefixes left out (e.g. ``("head.",)`` when task B gets a new head).

    Input: the network being trained on task B, whose parameters share names with ``old_model``.
    Output: a scalar, :math:`\Omega`.

    Usage::

        ewc = ElasticWeightConsolidation(net_after_a, x_a[:500], y_a[:500], strength=100.0, skip=("head.",))
        loss = F.cross_entropy(net(x_b), y_b) + ewc(net)
    """

    def __init__(self, old_model: nn.Module, x: torch.Tensor, y: torch.Tensor, strength: float,
                 skip: tuple[str, ...] = ()):
        super().__init__()
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"the Fisher estimate needs matching, non-empty examples; got {len(x)} inputs and "
                             f"{len(y)} labels")
        self.strength = float(strength)
        old_model = copy.deepcopy(old_model).requires_grad_(True).eval()  # a frozen column has no gradients
        names = [n for n, p in old_model.named_parameters() if not n.startswith(skip)]
        params = dict(old_model.named_parameters())
        fisher = {n: torch.zeros_like(params[n]) for n in names}
        for i in range(len(x)):  # one gradient per example: the Fisher sums squares, not squares of sums
            log_p = F.log_softmax(old_model(x[i:i + 1]), dim=1)[0, y[i]]
            grads = torch.autograd.grad(log_p, [params[n] for n in names], allow_unused=True)
            for n, g in zip(names, grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2
        self.names = names
        for k, n in enumerate(names):
            self.register_buffer(f"fisher_{k}", fisher[n] / len(x))
            self.register_buffer(f"anchor_{k}", params[n].detach().clone())

    def forward(self, model: nn.Module) -> torch.Tensor:
        params = dict(model.named_parameters())
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"the model has no parameters named {missing[:3]}: pass the network that was "
                             "trained on task A (or a copy of it), with the same layer names")
        total = sum((getattr(self, f"fisher_{k}") * (params[n] - getattr(self, f"anchor_{k}")) ** 2).sum()
                    for k, n in enumerate(self.names))
        return 0.5 * self.strength * total
