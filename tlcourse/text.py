"""Pretrained text models, offline first: a BERT encoder and a GPT-style LM.

``load_text_encoder("minilm-l6")`` gives MiniLM-L6 (BERT, 22.7M parameters)
from the pinned offline package. ``load_causal_lm("smollm2-135m")`` gives
SmolLM2-135M: its 4-bit GGUF file is dequantised once (about 30 s) into a
float32 transformers folder in the cache, which later loads in about a
second. Online, both take any Hugging Face checkpoint name instead
(``bert-base-uncased``, ``distilbert-base-uncased``, ``gpt2``).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import torch

from .assets import AssetError, REGISTRY, UnknownAssetError, cache_root, configure_hub_offline, file_digest, get_asset, is_online, resolve


def _local_or_hub(name: str, kind: str) -> str:
    """A verified local folder for a registry name (aliases too), else the hub name itself when online."""
    try:
        asset = get_asset(name)
    except UnknownAssetError:
        asset = None
    if asset is not None:
        if asset.kind != kind:
            raise ValueError(f"{asset.name!r} is a {asset.kind}, not a {kind}")
        return str(resolve(asset).directory)
    configure_hub_offline()
    if not is_online():
        offline = ", ".join(n for n, a in REGISTRY.items() if a.kind == kind)
        raise AssetError(f"{name!r} would come from the Hugging Face hub, and this machine is offline. "
                         f"Offline alternatives: {offline}.")
    return name


def load_text_encoder(name: str = "minilm-l6"):
    """``(tokenizer, model)`` for a BERT-family encoder, in eval mode."""
    from transformers import AutoModel, AutoTokenizer
    configure_hub_offline()
    where = _local_or_hub(name, "text-encoder")
    return AutoTokenizer.from_pretrained(where), AutoModel.from_pretrained(where).eval()


def load_sequence_classifier(name: str = "minilm-l6", num_labels: int = 2):
    """``(tokenizer, model)`` with a fresh classification head on the encoder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    configure_hub_offline()
    where = _local_or_hub(name, "text-encoder")
    return (AutoTokenizer.from_pretrained(where),
            AutoModelForSequenceClassification.from_pretrained(where, num_labels=num_labels))


def converted_lm_dir() -> pathlib.Path:
    return cache_root() / "converted" / "smollm2-135m"


def _convert_gguf(gguf: pathlib.Path, out: pathlib.Path, source_sha: str) -> None:
    """Dequantise the GGUF once and save a plain float32 transformers folder, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = lm.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses GGUF-quantised configs
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(lm.state_dict(), strict=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "tlcourse_source.json").write_text(json.dumps({"gguf": gguf.name, "sha256": source_sha}))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_causal_lm() -> pathlib.Path:
    """The converted SmolLM2 folder, converting from the verified GGUF if needed."""
    gguf = resolve("smollm2-135m").path
    sha = file_digest(gguf)
    out = converted_lm_dir()
    stamp = out / "tlcourse_source.json"
    if not (stamp.exists() and json.loads(stamp.read_text()).get("sha256") == sha
            and any(out.glob("*.safetensors"))):
        _convert_gguf(gguf, out, sha)
    return out


def load_causal_lm(name: str = "smollm2-135m"):
    """``(tokenizer, model)`` for a causal LM, in eval mode, float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    configure_hub_offline()
    try:
        gguf_only = get_asset(name).name == "smollm2-135m"  # shipped as GGUF: convert once
    except UnknownAssetError:
        gguf_only = False
    where = str(prepare_causal_lm()) if gguf_only else _local_or_hub(name, "causal-lm")
    tok = AutoTokenizer.from_pretrained(where)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32).eval()
