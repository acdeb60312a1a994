"""tlcourse: the support package of a hands-on course on transfer learning.

    from tlcourse import load_backbone, load_fashion_mnist, fit, extract_features
"""
__version__ = "0.1.0"

from .assets import AssetError, resolve  # noqa: E402
from .backbones import Backbone, count_parameters, load_backbone, load_imagenet_classifier  # noqa: E402
from .data import (FASHION_CLASSES, few_shot_subset, load_digits, load_fashion_mnist,  # noqa: E402
                   load_imagenet_samples, load_mnist5k, load_rotten_tomatoes)
from .device import pick_device, seed_everything  # noqa: E402
from .features import extract_features  # noqa: E402
from .profile import profile  # noqa: E402
from .train import History, evaluate, fit, make_loader, predict  # noqa: E402

__all__ = ["AssetError", "resolve", "Backbone", "count_parameters", "load_backbone", "load_imagenet_classifier",
           "FASHION_CLASSES", "few_shot_subset", "load_digits", "load_fashion_mnist", "load_imagenet_samples",
           "load_mnist5k", "load_rotten_tomatoes", "pick_device", "seed_everything", "extract_features",
           "profile", "History", "evaluate", "fit", "make_loader", "predict"]
