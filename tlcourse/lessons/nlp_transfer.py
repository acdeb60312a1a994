"""Notebook 03, NLP transfer: the helpers only that notebook uses. Tokenisation displays, cached
sentence embeddings, a TF-IDF baseline, a fine-tuning runner with warm-up,
prompt builders and a batched label-word scorer for a causal LM.

The graded exercises of notebook 03 (mean pooling, the classification head,
label-word scoring) are written by the student. The library needs mean
pooling and label scoring too, so it has its own private versions
(:func:`tlcourse.text._masked_mean`, :func:`lm_label_scores`); the notebook says so, and its
tests check that the student's functions agree with them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from ..cache import cache_dir, cache_path, load_cached, save_cached
from ..device import pick_device, seed_everything
from ..features import model_fingerprint
from ..text import _masked_mean
from ..train import History, fit

# ---------------------------------------------------------------- tokenisation


def encode(tokenizer, texts: Sequence[str], max_length: int = 48) -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` for ``texts``: padded to the longest, truncated."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def show_tokens(tokenizer, texts: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Print each text's subword tokens, ids and attention mask as the model sees them.

    The texts are padded to the longest (and truncated to ``max_length`` if given),
    so the padding and the mask that marks it are visible. Returns the batch.
    """
    kw = dict(truncation=True, max_length=max_length) if max_length else {}
    batch = tokenizer(list(texts), padding=True, return_tensors="pt", **kw)
    name = type(tokenizer).__name__
    print(f"{name}: vocabulary {tokenizer.vocab_size:,}, padded length {batch['input_ids'].shape[1]}"
          + (f" (truncated to {max_length})" if max_length else ""))
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"]):
        toks = tokenizer.convert_ids_to_tokens(ids.tolist())
        real = int(mask.sum())
        print(f"\n  text   : {text!r}")
        print(f"  tokens : {' | '.join(toks)}")
        print(f"  ids    : {ids.tolist()}")
        print(f"  mask   : {mask.tolist()}   ({real} real, {len(ids) - real} padding)")
    return batch


class _Collate:
    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, items):
        texts, labels = zip(*items)
        return encode(self.tokenizer, texts, self.max_length), torch.tensor(labels, dtype=torch.long)


def text_loader(tokenizer, dataset, batch_size: int = 32, max_length: int = 48, shuffle: bool = False,
                seed: int = 0, num_samples: int | None = None) -> DataLoader:
    """Batches ``({"input_ids", "attention_mask"}, labels)``, padded per batch.

    ``num_samples`` draws that many examples per pass at random (repeating the
    data if needed), so one pass can be a fixed number of optimizer steps.
    """
    gen = torch.Generator().manual_seed(seed)
    sampler = None
    if num_samples is not None:
        sampler = RandomSampler(dataset, replacement=False, num_samples=num_samples, generator=gen)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=gen)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=_Collate(tokenizer, max_length))


# ---------------------------------------------------------------- embeddings


def embeddings_cache_dir():
    return cache_dir("embeddings")


@torch.no_grad()
def sentence_embeddings(tokenizer, encoder: nn.Module, dataset, max_length: int = 48, batch_size: int = 64,
                        cache: bool = True, device=None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"mean": (N, H), "cls": (N, H)}, labels)`` from a frozen encoder, cached on disk.

    One eval-mode pass gives both poolings: the masked mean over real tokens
    and the first (``[CLS]``) token. The cache key hashes the encoder's
    weights, the tokenizer, ``max_length`` and the dataset's fingerprint.
    """
    path = None
    if cache and callable(getattr(dataset, "fingerprint", None)):
        parts = [model_fingerprint(encoder), type(tokenizer).__name__, str(tokenizer.vocab_size),
                 str(max_length), dataset.fingerprint()]
        path = cache_path("embeddings", *parts)
        saved = load_cached(path)
        if saved is not None:
            return {"mean": saved["mean"], "cls": saved["cls"]}, saved["labels"]
    device = torch.device(device) if device else pick_device()
    was_training = encoder.training
    encoder.eval().to(device)
    means, clss, labels = [], [], []
    try:
        for inputs, y in text_loader(tokenizer, dataset, batch_size=batch_size, max_length=max_length):
            inputs = {k: v.to(device) for k, v in inputs.items()}
            hidden = encoder(**inputs).last_hidden_state.float()
            means.append(_masked_mean(hidden, inputs["attention_mask"]).cpu())
            clss.append(hidden[:, 0].cpu())
            labels.append(y)
    finally:
        encoder.train(was_training)
    out = {"mean": torch.cat(means), "cls": torch.cat(clss)}
    labels_t = torch.cat(labels)
    if path is not None:
        save_cached(path, {**out, "labels": labels_t})
    return out, labels_t


# ---------------------------------------------------------------- classical heads


@dataclass
class Result:
    """One approach's score: accuracy, wall time in seconds and trainable parameters."""

    accuracy: float
    seconds: float
    trainable: int
    predictions: np.ndarray


def tfidf_baseline(train, test, C: float = 4.0) -> Result:
    """TF-IDF on word 1-2-grams with logistic regression: the no-pretraining baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_tr = vec.fit_transform(train.texts)
    clf = LogisticRegression(C=C, max_iter=2000).fit(x_tr, train.labels)
    pred = clf.predict(vec.transform(test.texts))
    return Result(float((pred == test.labels).mean()), time.perf_counter() - t0,
                  int(clf.coef_.size + clf.intercept_.size), pred)


def linear_probe(x_train: torch.Tensor, y_train, x_test: torch.Tensor, y_test, C: float = 1.0) -> Result:
    """Logistic regression on frozen embeddings (standardised with the training statistics)."""
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    mu, sd = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    xtr, xte = ((x_train - mu) / sd).numpy(), ((x_test - mu) / sd).numpy()
    clf = LogisticRegression(C=C, max_iter=2000).fit(xtr, np.asarray(y_train))
    pred = clf.predict(xte)
    return Result(float((pred == np.asarray(y_test)).mean()), time.perf_counter() - t0,
                  int(clf.coef_.size + clf.intercept_.size), pred)


# ---------------------------------------------------------------- fine-tuning


def warmup_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """Linear warm-up from 0 to the base learning rate, then linear decay to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def schedule_values(total_steps: int, warmup_steps: int, lr: float) -> list[float]:
    """The learning rate at every step of :func:`warmup_schedule` (for plotting)."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = warmup_schedule(opt, total_steps, warmup_steps)
    values = []
    for _ in range(total_steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def _layers(encoder: nn.Module):
    inner = getattr(encoder, "encoder", None)
    layers = getattr(inner, "layer", None) or getattr(encoder, "layers", None)
    if layers is None:
        raise ValueError(f"cannot find the transformer layers of {type(encoder).__name__}")
    return layers


def freeze_lower_layers(encoder: nn.Module, n_layers: int) -> nn.Module:
    """Freeze the embeddings and the lowest ``n_layers`` transformer layers of a BERT-style encoder.

    ``n_layers=0`` freezes nothing: every weight trains.
    """
    if n_layers <= 0:
        return encoder
    for p in getattr(encoder, "embeddings", nn.Module()).parameters():
        p.requires_grad_(False)
    for layer in list(_layers(encoder))[:n_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    return encoder


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def finetune(model: nn.Module, tokenizer, train, *, steps: int, lr: float = 1e-4, warmup: float = 0.1,
             batch_size: int = 16, max_length: int = 48, weight_decay: float = 0.01, seed: int = 0,
             log_every: int = 5, grad_clip: float | None = 1.0, device=None, progress: bool = False) -> History:
    """Train ``model`` (called as ``model(input_ids=..., attention_mask=...)``) for ``steps`` steps.

    AdamW over the trainable parameters, a linear warm-up over the first
    ``warmup`` fraction of the steps then linear decay, gradient clipping,
    via :func:`tlcourse.train.fit`. The history has one row per ``log_every``
    steps (mean training loss and the learning rate at the end of it).
    """
    seed_everything(seed)
    log_every = max(1, min(log_every, steps))
    chunks = math.ceil(steps / log_every)
    loader = text_loader(tokenizer, train, batch_size=batch_size, max_length=max_length, seed=seed,
                         num_samples=log_every * batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_schedule(optimizer, chunks * log_every, round(warmup * chunks * log_every))
    return fit(model, loader, epochs=chunks, optimizer=optimizer, scheduler=scheduler, device=device,
               grad_clip=grad_clip, progress=progress)


@torch.no_grad()
def predict_texts(model: nn.Module, tokenizer, dataset, max_length: int = 48, batch_size: int = 64,
                  device=None) -> torch.Tensor:
    """Logits of a text classifier for every example of ``dataset``, in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for inputs, _ in text_loader(tokenizer, dataset, batch_size=batch_size, max_length=max_length):
            logits = model(**{k: v.to(device) for k, v in inputs.items()})
            out.append(getattr(logits, "logits", logits).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


# ---------------------------------------------------------------- prompting a causal LM

INSTRUCTION = "Is the sentiment of each movie review positive or negative?\n\n"
TEMPLATE = "Review: {text}\nSentiment:"


def review_prompt(text: str, template: str = TEMPLATE) -> str:
    """One review, ending where the label word should come."""
    return template.format(text=text)


def prompt_prefix(demos: Sequence[tuple[str, str]] = (), instruction: str = INSTRUCTION,
                  template: str = TEMPLATE) -> str:
    """The shared start of every prompt: the instruction, then ``demos`` (``(text, label_word)``) answered."""
    return instruction + "".join(template.format(text=t) + label + "\n\n" for t, label in demos)


def zero_shot_prompt(text: str) -> str:
    """The instruction and the review: a zero-shot prompt."""
    return prompt_prefix() + review_prompt(text)


def few_shot_prompt(text: str, demos: Sequence[tuple[str, str]]) -> str:
    """The instruction, answered examples, then the review: a few-shot (in-context) prompt."""
    return prompt_prefix(demos) + review_prompt(text)


def pick_demos(train, label_words: Sequence[str], per_class: int = 2, seed: int = 0,
               max_chars: int = 90) -> list[tuple[str, str]]:
    """``per_class`` short labelled training reviews per class, interleaved, for few-shot prompts."""
    rng = np.random.default_rng(seed)
    by_class = []
    for c in range(len(label_words)):
        pool = [i for i in np.flatnonzero(train.labels == c) if len(train.texts[i]) <= max_chars]
        by_class.append(rng.choice(pool, size=per_class, replace=False))
    order = [by_class[c][j] for j in range(per_class) for c in rng.permutation(len(label_words))]
    return [(train.texts[i], label_words[int(train.labels[i])]) for i in order]


def _base_and_head(model):
    base = getattr(model, getattr(model, "base_model_prefix", "model"), None) or model.get_decoder()
    return base, model.get_output_embeddings()


def _run_base(base, ids, mask, cache=None):
    """The LM body's hidden states, optionally continuing from a cached prefix."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cache is None:
            return base(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state, None
        if isinstance(cache, str):  # "new": start a cache
            out = base(input_ids=ids, attention_mask=mask, use_cache=True)
        else:  # transformers >= 5.2x calls the argument `cache`, earlier versions `past_key_values`
            import inspect
            name = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
            out = base(input_ids=ids, attention_mask=mask, use_cache=True, **{name: cache})
        return out.last_hidden_state, out


@torch.no_grad()
def lm_label_scores(model, tokenizer, prompts: Sequence[str], labels: Sequence[str], prefix: str = "",
                    batch_size: int = 16, cache_prefix: bool = True, device=None) -> torch.Tensor:
    """``(len(prompts), len(labels))``: log P(label tokens | prefix + prompt), summed over the label's tokens.

    The library's batched version of what notebook 03 asks you to write.
    ``prefix``, ``prompt`` and label are tokenised separately (no special
    tokens) and their ids joined; sequences are right-padded, the model runs
    in eval mode, and the output layer is applied only at the positions that
    predict label tokens. A shared ``prefix`` (instruction and few-shot
    examples) is run once and its key/value cache reused for every prompt.
    When every label is a single token, one pass scores them all.
    """
    import copy

    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    base, head = _base_and_head(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids_of = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"] if s else []
    pre = ids_of(prefix)
    p_ids = [ids_of(p) for p in prompts]
    l_ids = [ids_of(lab) for lab in labels]
    use_cache = bool(pre) and cache_prefix
    if pre and not use_cache:
        p_ids = [pre + p for p in p_ids]
    prefix_cache = None
    if use_cache:
        _, out = _run_base(base, torch.tensor([pre], device=device), torch.ones(1, len(pre), dtype=torch.long,
                                                                                 device=device), cache="new")
        prefix_cache = out["cache"] if "cache" in out else out["past_key_values"]
    scores = torch.zeros(len(prompts), len(labels))
    single = all(len(l) == 1 for l in l_ids)
    jobs = [(None, None)] if single else list(enumerate(l_ids))
    try:
        for j, lab in jobs:
            seqs = p_ids if single else [p + lab for p in p_ids]
            for s in range(0, len(seqs), batch_size):
                chunk = seqs[s:s + batch_size]
                width = max(len(q) for q in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for r, q in enumerate(chunk):
                    ids[r, :len(q)] = torch.tensor(q)
                    mask[r, :len(q)] = 1
                cache = None
                if use_cache:
                    cache = copy.deepcopy(prefix_cache)
                    cache.batch_repeat_interleave(len(chunk))
                    mask = torch.cat([torch.ones(len(chunk), len(pre), dtype=torch.long), mask], 1)
                hidden, _ = _run_base(base, ids.to(device), mask.to(device), cache)
                for r, q in enumerate(chunk):
                    if single:
                        logp = torch.log_softmax(head(hidden[r, len(q) - 1]).float(), -1)
                        scores[s + r] = logp[[l[0] for l in l_ids]].cpu()
                    else:
                        start = len(q) - len(lab)
                        logp = torch.log_softmax(head(hidden[r, start - 1:len(q) - 1]).float(), -1)
                        scores[s + r, j] = logp.gather(1, torch.tensor(lab, device=logp.device)[:, None]).sum().cpu()
    finally:
        model.train(was_training)
    return scores


# ---------------------------------------------------------------- reporting


def accuracy_interval(acc: float, n: int) -> float:
    """Half-width of a 95% normal-approximation interval for an accuracy measured on ``n`` items."""
    return 1.96 * math.sqrt(max(acc * (1 - acc), 1e-12) / n)
