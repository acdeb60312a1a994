"""Pretrained text models, offline first: a BERT encoder and a GPT-style LM.

``load_text_encoder("minilm-l6")`` gives MiniLM-L6 (BERT, 22.7M parameters)
from the pinned offline package. ``load_causal_lm("smollm2-135m")`` gives
SmolLM2-135M: its 4-bit GGUF file is dequantised once (about 30 s) into a
float32 transformers folder in the cache, which later loads in about a
second. Online, both take any Hugging Face checkpoint name instead
(``bert-base-uncased``, ``distilbert-base-uncased``, ``gpt2``).

``embed_texts`` turns sentences into MiniLM mean-pooled vectors (cached on
disk by :mod:`tlcourse.cache`); ``_masked_mean`` is the pooling it and
notebook 03's sentence embeddings share.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Sequence

import numpy as np
import torch

from .assets import AssetError, REGISTRY, UnknownAssetError, cache_root, configure_hub_offline, file_digest, get_asset, is_online, resolve
from .cache import cache_path, load_cached, save_cached


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
        _readable_by_all(tmp)  # mkdtemp and safetensors make owner-only files; a grading kernel runs as another uid
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable_by_all(folder: pathlib.Path) -> None:
    """Mode 0755 for ``folder``, 0644 for its files: a shared cache that other users' processes read."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        if f.is_file():
            f.chmod(0o644)


def prepare_causal_lm() -> pathlib.Path:
    """The converted SmolLM2 folder, converting from the verified GGUF if needed."""
    gguf = resolve("smollm2-135m").path
    sha = file_digest(gguf)
    out = converted_lm_dir()
    stamp = out / "tlcourse_source.json"
    if not (stamp.exists() and json.loads(stamp.read_text()).get("sha256") == sha
            and any(out.glob("*.safetensors"))):
        _convert_gguf(gguf, out, sha)
    elif out.stat().st_mode & 0o005 != 0o005 or any(f.is_file() and not f.stat().st_mode & 0o004
                                                     for f in out.iterdir()):
        try:  # converted by an older version, owner-only: open it to the grading kernels' uid
            _readable_by_all(out)
        except OSError:  # not ours to change (a read-only view of the cache): leave it
            pass
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


# ---------------------------------------------------------------- sentence embeddings

_ENCODERS: dict[str, tuple] = {}


def text_encoder(name: str = "minilm-l6"):
    """``(tokenizer, model)``, loaded once per process."""
    if name not in _ENCODERS:
        _ENCODERS[name] = load_text_encoder(name)
    return _ENCODERS[name]


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over the real tokens, where ``mask`` (B, T) is 1 (notebook 03 asks you to
    write yours)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed_texts(texts: Sequence[str], name: str = "minilm-l6", max_length: int = 64, batch_size: int = 64,
                cache: bool = True) -> torch.Tensor:
    """Sentence embeddings ``(N, 384)`` of ``texts`` with MiniLM, float32 on the CPU.

    Each text is tokenised (truncated to ``max_length``), encoded, and its
    token vectors averaged over the real tokens (padding excluded). The
    vectors are **not** normalised: their lengths vary, which is why cosine
    similarity must divide by them. Results are cached on disk by model name,
    length and texts.
    """
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("embed_texts got no texts")
    path = None
    if cache:
        path = cache_path("text_embeddings", name, str(max_length), "\x00".join(texts))
        saved = load_cached(path)
        if saved is not None:
            return saved
    tok, model = text_encoder(name)
    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
    out = torch.empty(len(texts), model.config.hidden_size)
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        out[torch.as_tensor(idx)] = _masked_mean(hidden, enc["attention_mask"]).float()
    if path is not None:
        save_cached(path, out)
    return out
