"""The asset registry: every pretrained model and dataset, described as data."""
from ._types import Asset, AssetFile, PackageSource, PipArchiveSource, SystemSource, TorchHubSource, UrlSource
from .registry import ALIASES, FIX_ASSETS, REGISTRY
from .resolve import (AssetError, Resolved, UnknownAssetError, cache_root, configure_hub_offline,
                      file_digest, get_asset, is_online, locate, resolve, seed_torch_hub, verify_file)

__all__ = ["Asset", "AssetFile", "PackageSource", "SystemSource", "TorchHubSource", "UrlSource", "ALIASES",
           "FIX_ASSETS", "REGISTRY", "AssetError", "Resolved", "UnknownAssetError", "cache_root",
           "configure_hub_offline", "file_digest", "get_asset", "is_online", "locate", "resolve",
           "seed_torch_hub", "verify_file", "PipArchiveSource"]
