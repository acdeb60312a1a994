"""The quick/full switch, and the sizes each notebook reads from it.

``TLCOURSE_PROFILE=quick`` keeps every notebook to about a minute on two CPU
cores: small subsets, few epochs, small images and cached features.
``TLCOURSE_PROFILE=full`` uses the real sizes and is meant for a GPU.
When the variable is unset the profile is ``full`` if CUDA is present and
``quick`` otherwise. Tests and grading always pin ``quick``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("quick", "full")
ENV_VAR = "TLCOURSE_PROFILE"


# Each notebook's quick profile, start to end, on the reference machine (2 CPU cores), at most:
# benchmarks/course_runtime.py measures against it, and grading sets each submission's deadline
# from it (a multiple of the solution's own run time).
RUNTIME_BUDGET_S = {"01": 90, "02": 120, "03": 180, "04": 240, "05": 150, "06": 120, "08": 120, "09": 150, "11": 120, "10": 120, "07": 120, "12": 150}


class ProfileError(ValueError):
    """An unknown profile name."""


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU to speak of
        return False


def profile_name() -> str:
    """The profile in force: the environment variable, else by hardware."""
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if not raw:
        return "full" if _cuda_available() else "quick"
    if raw not in PROFILES:
        raise ProfileError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a profile. "
            f"Use one of {', '.join(PROFILES)}, e.g. `export {ENV_VAR}=quick`."
        )
    return raw


@dataclass(frozen=True)
class Profile:
    """Sizes for one profile. Notebooks read ``profile().sizes['01']['train']``."""

    name: str
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def __getitem__(self, notebook: str) -> dict[str, Any]:
        try:
            return self.sizes[notebook]
        except KeyError:
            raise KeyError(f"no sizes for notebook {notebook!r} in profile {self.name!r}; "
                           f"known: {sorted(self.sizes)}") from None


# Quick sizes come from the measured CPU throughput (see README "Budgets"):
# MobileNetV2 at 64 px extracts ~500 img/s on 2 cores, a small CNN trains
# ~1,200 img/s at 28 px, MiniLM infers ~55 seq/s at length 64.
_SIZES = {
    "quick": {
        "01": dict(image_size=96, pool=2000, test=1000, label_budgets=(10, 50, 200), seeds=3,
                   scratch_model="small_cnn", scratch_max_epochs=40, scratch_patience_steps=60,
                   scratch_patience_epochs=4, scratch_seeds=1),
        "02": dict(image_size=32, train=500, test=500, epochs=3, seeds=2, batch_size=32, lr=1e-4,
                   head_lr=1e-3, head_only_lr=1e-2, scratch_lr=3e-3, unfreeze=(0, 5, 19)),
        "03": dict(max_length=48, train=600, test=400, label_budgets=(16, 64, 256), seeds=3,
                   finetune_steps=40, finetune_seeds=1, freeze_lower=4, lr=1e-4, batch_size=16,
                   lm_test=100, shots_per_class=2, demo_sets=2),
        "04": dict(image_size=64, teacher_train=4000, train=2000, labelled=500, test=1000, student_width=16,
                   student_epochs=4, seeds=3, batch_size=64, sweep_T=(1, 4), sweep_alpha=(0.5, 1.0), sweep_epochs=2,
                   omit_T=4.0, omit_alpha=0.9, omit_epochs=4),
        "05": dict(image_size=16, width=8, epochs=6, seeds=3, batch_size=128, coral_weight=10.0, iw_C=0.001,
                   embed_method="pca"),
        "06": dict(image_size=64, per_class=150, test_per_class=100, epochs=5, seeds=3,
                   text_test=300, text_val=100, text_pool=200, shots=(4, 16, 64)),
        "09": dict(image_size=320, photos=6, control_seeds=3, score_threshold=0.25, iou_threshold=0.45,
                   tile_size=416, tree_zoom=2, tree_train_tiles=20, tree_test_tiles=12, tree_steps=200,
                   tree_lr=3e-3, tree_seeds=3, people_photos=4),
        "11": dict(n_source=300, n_target=300, tca_mu=1.0, tca_components=20, seeds=3, head_steps=300,
                   coral_weight=10.0, sweep_components=(2, 5, 10, 20, 50),
                   mf_rank=16, mf_lam=10.0, mf_steps=60, mf_lr=0.1, cmf_alpha=0.5, test_users=200,
                   keeps=(1, 3, 10), keep_max=10),
        # the benchmarks' sizes (benchmarks/<name>.py reads profile()["<name>"])
        "feature_cache": dict(images=1000, image_size=64),
        "fit_overhead": dict(train=2000),
        "grading_throughput": dict(submissions=8),
        "08": dict(image_size=20, width=8, pool="fashion-other", temperature=0.2, pretrain_epochs=5, batch_size=128,
                   label_budgets=(10, 50, 200), seeds=3, finetune_steps=120,
                   pnn_image_size=14, pnn_b_labels=10, pnn_hidden=(64, 64), pnn_adapter_dim=16, pnn_a_epochs=4,
                   pnn_b_epochs=6, pnn_ewc_strengths=(100, 1000, 10000)),
        "10": dict(variants=3, label_budgets=(2, 8), seeds=3, head_steps=150, cnn_steps=120, cnn_width=8,
                   n_mels=40, lr=3e-3, asr_clips=2),
        "07": dict(image_size=28, width=128, label_budgets=(2, 20), steps=200, batch_size=64, lr=3e-3, seeds=3,
                   coarse_weights=(0.0, 0.3, 1.0, 3.0), printed=2000, target_per_class=3, source_temperature=1.0,
                   pretrain_steps=600),
        "12": dict(image_size=32, pool=600, val_fraction=0.2, test=500, batch_size=32, train_blocks=2,
                   finder_steps=40, finder_range=(1e-5, 1.0), max_epochs=6, patience=2, seeds=3, probe_steps=300,
                   zoo_skip=(), zoo_repeats=3, project_shots=20),
    },
    "full": {
        "01": dict(image_size=224, pool=10000, test=10000, label_budgets=(10, 50, 200, 1000), seeds=5,
                   scratch_model="mobilenet_v2", scratch_max_epochs=100,
                   scratch_patience_steps=1500, scratch_patience_epochs=10, scratch_seeds=3),
        "02": dict(image_size=224, train=10000, test=10000, epochs=9, seeds=3, batch_size=64, lr=1e-4,
                   head_lr=1e-3, head_only_lr=1e-2, scratch_lr=3e-3, unfreeze=(0, 5, 19)),
        "03": dict(max_length=128, train=8000, test=2000, label_budgets=(16, 64, 256, 1024, 8000), seeds=5,
                   finetune_steps=1500, finetune_seeds=3, freeze_lower=4, lr=5e-5, batch_size=32,
                   lm_test=2000, shots_per_class=2, demo_sets=3),
        "04": dict(image_size=224, teacher_train=40000, train=20000, labelled=2000, test=10000, student_width=16,
                   student_epochs=20, seeds=3, batch_size=128, sweep_T=(1, 2, 4, 8), sweep_alpha=(0.5, 0.9, 1.0),
                   sweep_epochs=10, omit_T=4.0, omit_alpha=0.9, omit_epochs=20),
        "05": dict(image_size=16, width=16, epochs=20, seeds=5, batch_size=128, coral_weight=10.0, iw_C=0.001,
                   embed_method="tsne"),
        "06": dict(image_size=224, per_class=1000, test_per_class=1000, epochs=30, seeds=5,
                   text_test=1000, text_val=500, text_pool=2000, shots=(4, 16, 64, 256)),
        "09": dict(image_size=416, photos=6, control_seeds=5, score_threshold=0.25, iou_threshold=0.45,
                   tile_size=416, tree_zoom=2, tree_train_tiles=None, tree_test_tiles=None, tree_steps=1000,
                   tree_lr=3e-3, tree_seeds=5, people_photos=4),
        "11": dict(n_source=1000, n_target=898, tca_mu=1.0, tca_components=20, seeds=5, head_steps=1000,
                   coral_weight=10.0, sweep_components=(2, 5, 10, 20, 50, 100),
                   mf_rank=16, mf_lam=10.0, mf_steps=100, mf_lr=0.1, cmf_alpha=0.5, test_users=300,
                   keeps=(1, 3, 5, 10), keep_max=10),
        "feature_cache": dict(images=10000, image_size=224),
        "fit_overhead": dict(train=20000),
        "grading_throughput": dict(submissions=40),
        "08": dict(image_size=28, width=16, pool="fashion-other", temperature=0.2, pretrain_epochs=100, batch_size=256,
                   label_budgets=(10, 50, 200, 1000), seeds=5, finetune_steps=600,
                   pnn_image_size=28, pnn_b_labels=20, pnn_hidden=(256, 128), pnn_adapter_dim=32, pnn_a_epochs=10,
                   pnn_b_epochs=20, pnn_ewc_strengths=(10, 100, 1000, 10000, 100000)),
        "10": dict(variants=8, label_budgets=(2, 8, 32), seeds=5, head_steps=400, cnn_steps=800, cnn_width=16,
                   n_mels=40, lr=3e-3, asr_clips=5),
        "07": dict(image_size=28, width=512, label_budgets=(2, 5, 20, 100), steps=1000, batch_size=128, lr=1e-3,
                   seeds=5, coarse_weights=(0.0, 0.1, 0.3, 1.0, 3.0, 10.0), printed=10000, target_per_class=3,
                   source_temperature=1.0, pretrain_steps=3000),
        "12": dict(image_size=96, pool=5000, val_fraction=0.2, test=2000, batch_size=64, train_blocks=2,
                   finder_steps=100, finder_range=(1e-6, 1.0), max_epochs=20, patience=4, seeds=3, probe_steps=500,
                   zoo_skip=(), zoo_repeats=10, project_shots=20),
    },
}


def profile(name: str | None = None) -> Profile:
    """Return the :class:`Profile` in force (or the one named)."""
    name = (name or profile_name()).lower()
    if name not in PROFILES:
        raise ProfileError(f"{name!r} is not a profile; use one of {', '.join(PROFILES)}.")
    return Profile(name=name, sizes=_SIZES[name])
