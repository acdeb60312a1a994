r"""Learned task weights for multi-task learning: homoscedastic uncertainty weighting.

`Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry
and Semantics", CVPR 2018 <https://arxiv.org/abs/1705.07115>`_.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn


class UncertaintyWeighting(nn.Module):
    r"""Combine per-task losses with one learned log-variance per task (Kendall et al., 2018).

    Each task :math:`t` gets a learnable :math:`s_t = \log \sigma_t^2` (initialised at 0).
    For classification losses the paper's objective (its eq. 10, written with :math:`s_t`) is

    .. math::
        \mathcal{L} = \sum_t e^{-s_t}\, \mathcal{L}_t + \tfrac12 s_t ,

    so a task's effective weight is :math:`e^{-s_t} = 1/\sigma_t^2`. For a fixed loss value
    the optimum is :math:`e^{-s_t} = 1 / (2\mathcal{L}_t)`: a task whose loss stays large
    (noisy, hard, or on a larger scale) is down-weighted, and the :math:`\tfrac12 s_t` term
    stops every weight from collapsing to 0.

    Args:
        tasks: the task names, in a fixed order.

    Inputs: ``losses``, a mapping task → scalar loss tensor (with grad). Output: a scalar.
    ``weights()`` gives the current :math:`e^{-s_t}` per task as floats.

    Usage::

        weighting = UncertaintyWeighting(["fine", "coarse"])
        total = weighting({"fine": loss_fine, "coarse": loss_coarse})   # then total.backward()
        optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()])
    """

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = tuple(tasks)
        if not self.tasks:
            raise ValueError("UncertaintyWeighting needs at least one task name")
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        missing = [t for t in self.tasks if t not in losses]
        if missing:
            raise KeyError(f"no loss for task(s) {missing}; got {sorted(losses)}")
        stacked = torch.stack([torch.as_tensor(losses[t]).reshape(()).to(self.log_vars) for t in self.tasks])
        return (torch.exp(-self.log_vars) * stacked + 0.5 * self.log_vars).sum()

    def weights(self) -> dict[str, float]:
        """The current effective weight :math:`e^{-s_t}` of each task."""
        return {t: float(w) for t, w in zip(self.tasks, torch.exp(-self.log_vars.detach()).cpu())}
