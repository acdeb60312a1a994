"""Distillation methods, one concept each.

- :class:`HintLoss`: FitNets' hint loss (Romero et al., 2015), a student layer
  regressed onto a teacher layer through a learned linear map.

Notebook 04 asks students to write the response-based KD loss (Hinton et al.,
2015) themselves, so the package has none. The loops that use these losses
live in :mod:`tlcourse.lessons.distillation`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HintLoss(nn.Module):
    r"""The hint loss of `FitNets: Hints for Thin Deep Nets (ICLR 2015) <https://arxiv.org/abs/1412.6550>`_.

    A student layer (the *guided* layer, :math:`v`) is trained to predict a
    teacher layer (the *hint*, :math:`u`) through a learned regressor
    :math:`r` that maps the student's width to the teacher's:

    .. math::
        \mathcal{L}_{\text{hint}} = \frac{1}{N\,d} \sum_{i=1}^{N} \big\lVert u(x_i) - r\big(v(x_i)\big) \big\rVert_2^2

    (FitNets writes :math:`\tfrac12\lVert\cdot\rVert^2` per example; the mean
    over examples and the :math:`d` teacher dimensions only rescales it). Here
    :math:`r` is linear and the hint is the teacher's pooled penultimate
    features, cached once like its logits; standardise them first
    (:func:`tlcourse.features.standardize`) so that no single dimension dominates. The regressor
    is trained with the student and thrown away afterwards.

    Args:
        student_dim (int): width of the student's guided layer.
        teacher_dim (int): width of the teacher's hint.

    Inputs: ``student_features`` (N, student_dim) and ``teacher_features`` (N, teacher_dim).
    Output: a scalar.

    Usage::

        hint = HintLoss(student.feature_dim, f_teacher.shape[1])
        loss = hint(student.features(images), standardize(f_teacher)[idx])
    """

    def __init__(self, student_dim: int, teacher_dim: int):
        super().__init__()
        self.regressor = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        if student_features.shape[0] != teacher_features.shape[0]:
            raise ValueError(f"{student_features.shape[0]} student rows but {teacher_features.shape[0]} teacher rows")
        if teacher_features.shape[1] != self.regressor.out_features:
            raise ValueError(f"the teacher's hint has {teacher_features.shape[1]} dimensions; this HintLoss was "
                             f"made for {self.regressor.out_features}")
        return F.mse_loss(self.regressor(student_features), teacher_features)
