"""Checks for notebook 03, NLP transfer.

q1 ``mean_pool(last_hidden_state, attention_mask)``; q2 ``SentimentClassifier``
(a head on an encoder, frozen or not); q3 ``label_logprob(model, tokenizer,
prompt, label)``. Each is evaluated on tiny models built here from fixed
seeds (a 2-layer BERT, a 2-layer Llama and a byte-level tokenizer without
merges), against expected outputs stored in ``_expected/nlp_transfer.json``
(computed once by scripts/make_check_expected.py), so a check takes well
under a second and needs no download.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from . import _expected
from ._core import Question, QuestionSet, Wrong

_TOPIC = "nlp_transfer"

_TOL = dict(atol=1e-4, rtol=1e-4)


def _close(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.detach().float(), b, **_TOL)


# ---------------------------------------------------------------- q1

def _probe_hidden(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 6, 8, generator=g) + 1.0  # padding positions hold large, non-zero vectors
    hidden[:, 3:] += 5.0
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    return hidden, mask


def _eval_pool(mean_pool) -> None:
    hidden, mask = _probe_hidden()
    _expected.verify(_TOPIC, "probe_hidden", hidden, mask)
    out = mean_pool(hidden.clone(), mask.clone())
    if not isinstance(out, torch.Tensor):
        raise Wrong("`mean_pool` must return a tensor of shape (batch, hidden).")
    ref = _expected.value(_TOPIC, "pooled").float()
    if out.shape != ref.shape:
        if out.shape == (6, 8):
            raise Wrong(f"got shape {tuple(out.shape)} for a batch of 3 sequences of 6 tokens: you averaged "
                        "over the batch (dim 0). Average over the token dimension (dim 1) so each sentence "
                        "keeps its own vector.")
        raise Wrong(f"got shape {tuple(out.shape)} for hidden states (3, 6, 8); expected (3, 8): "
                    "one vector per sentence, averaged over its tokens.")
    out = out.detach().float()
    if _close(out, hidden.mean(1)):
        raise Wrong("you averaged over every position, padding included. Padding tokens are not part of the "
                    "sentence: a short sentence padded to a long batch would get a different embedding from "
                    "the same sentence alone. Weight the tokens by the attention mask.")
    if _close(out, (hidden * mask[..., None]).sum(1)):
        raise Wrong("you summed the real tokens but did not divide: a sum grows with sentence length. "
                    "Divide by the number of real tokens of each sentence.")
    if _close(out, (hidden * mask[..., None]).sum(1) / hidden.shape[1]):
        raise Wrong("you summed only the real tokens but divided by the padded length. Divide by the number "
                    "of real tokens of each sentence (the sum of its attention mask).")
    if _close(out, hidden[:, 0]):
        raise Wrong("that is the first ([CLS]) token's vector, not a mean over the tokens.")
    if not _close(out, ref):
        raise Wrong("the pooled vectors differ from the mean of each sentence's real (mask = 1) token vectors. "
                    "Multiply the hidden states by the mask (with a trailing dimension so it broadcasts), sum "
                    "over tokens and divide by the mask's sum per sentence.")
    one = mean_pool(hidden[1:2].clone(), mask[1:2].clone())
    if not isinstance(one, torch.Tensor) or one.shape != (1, 8):
        shape = tuple(one.shape) if isinstance(one, torch.Tensor) else type(one).__name__
        raise Wrong(f"for a batch of ONE sentence you return shape {shape}; expected (1, 8). A `.squeeze()` "
                    "(or indexing) drops the batch dimension when the batch has one element, and the head "
                    "after it then breaks. Keep the batch dimension.")
    h = hidden.clone().requires_grad_(True)
    pooled = mean_pool(h, mask.float())
    if not torch.allclose(pooled.detach().float(), ref, **_TOL):
        raise Wrong("with a float attention mask the result changes; treat the mask as weights 0/1 of any dtype.")
    if not pooled.requires_grad:
        raise Wrong("the result carries no gradient. During fine-tuning the loss must flow back through the "
                    "pooling into the encoder: no `torch.no_grad()`, `.detach()` or `.numpy()` here.")


# ---------------------------------------------------------------- q2

@functools.lru_cache(maxsize=None)
def _tiny_bert_state(seed: int):
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=60, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=32, hidden_dropout_prob=0.2,
                     attention_probs_dropout_prob=0.2)
    return cfg, BertModel(cfg, add_pooling_layer=False).state_dict()


def _tiny_bert(seed: int = 0):
    from transformers import BertModel
    cfg, state = _tiny_bert_state(seed)
    model = BertModel(cfg, add_pooling_layer=False)
    model.load_state_dict(state)
    return model.eval()


def _probe_tokens():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 60, (4, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5, [1] * 6 + [0]])
    ids[mask == 0] = 0
    return ids, mask


def _head_linear(model: nn.Module, encoder: nn.Module) -> nn.Linear:
    inside = {id(m) for m in encoder.modules()}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in inside]
    if not linears:
        raise Wrong("the classifier has no nn.Linear outside the encoder: the head is one linear layer from "
                    "the pooled vector to one logit per class.")
    if len(linears) > 1:
        raise Wrong(f"the head has {len(linears)} Linear layers; use exactly one, from the encoder's hidden "
                    "size to `num_classes`.")
    return linears[0]


def _eval_classifier(SentimentClassifier) -> None:
    enc = _tiny_bert()
    enc_ids = {id(p) for p in enc.parameters()}
    model = SentimentClassifier(enc, 3, freeze_encoder=True)
    if not isinstance(model, nn.Module):
        raise Wrong("`SentimentClassifier(...)` must create an nn.Module (subclass nn.Module and call "
                    "`super().__init__()` first).")
    params = list(model.parameters())
    if not enc_ids <= {id(p) for p in params}:
        raise Wrong("the encoder's weights are not among the classifier's parameters: store the encoder as an "
                    "attribute (`self.encoder = encoder`) so it is registered as a submodule, or fine-tuning "
                    "would never update it and `.eval()`/`.to()` would not reach it.")
    head = _head_linear(model, enc)
    if head.in_features != enc.config.hidden_size:
        raise Wrong(f"the head takes {head.in_features} inputs but this encoder's hidden size is "
                    f"{enc.config.hidden_size}: read it from `encoder.config.hidden_size` instead of hard-coding.")
    if head.out_features != 3:
        raise Wrong(f"asked for 3 classes, the head gives {head.out_features} outputs: use `num_classes`.")
    still = [n for n, p in enc.named_parameters() if p.requires_grad]
    if still:
        raise Wrong(f"with freeze_encoder=True, {len(still)} encoder tensors still require gradients "
                    f"(e.g. `{still[0]}`). Set `requires_grad` on each encoder parameter.")
    if not all(p.requires_grad for p in head.parameters()):
        raise Wrong("with freeze_encoder=True the head is frozen too; only the encoder should be frozen, "
                    "the new head must learn.")
    # the same encoder, now unfrozen on request (it arrives frozen from the previous experiment)
    model2 = SentimentClassifier(enc, 3, freeze_encoder=False)
    frozen = [n for n, p in enc.named_parameters() if not p.requires_grad]
    if frozen:
        raise Wrong(f"with freeze_encoder=False, {len(frozen)} encoder tensors still have requires_grad=False "
                    "(this encoder was frozen by an earlier experiment). Set every encoder parameter's "
                    "`requires_grad` from the flag in both directions: trainable exactly when the encoder is not "
                    "to be frozen.")
    ids, mask = _probe_tokens()
    model2.eval()
    with torch.no_grad():
        out = model2(input_ids=ids, attention_mask=mask)
    out = getattr(out, "logits", out)
    if not isinstance(out, torch.Tensor) or out.shape != (4, 3):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise Wrong(f"for 4 sentences and 3 classes `forward` returned {shape}; expected logits of shape (4, 3).")
    head2 = _head_linear(model2, enc)
    with torch.no_grad():
        hidden = enc(input_ids=ids, attention_mask=mask).last_hidden_state
        _expected.verify(_TOPIC, "bert_hidden", hidden)
        ref = head2(_expected.value(_TOPIC, "bert_pooled").float())
        if _close(out, head2(hidden.mean(1))):
            raise Wrong("the logits come from a mean over all positions, padding included: pool with the "
                        "attention mask (your `mean_pool`).")
        if _close(out, head2(hidden[:, 0])):
            raise Wrong("the logits come from the first ([CLS]) token; this exercise asks for mean pooling "
                        "with the attention mask (your `mean_pool`).")
        if _close(out, torch.softmax(ref, -1)):
            raise Wrong("`forward` returns probabilities; return raw logits, the cross-entropy loss applies "
                        "the softmax itself.")
    if not _close(out.float(), ref):
        raise Wrong("in eval mode the logits differ from head(mean_pool(encoder(input_ids, attention_mask)"
                    ".last_hidden_state, attention_mask)). Pass the attention mask to the encoder and to the pooling.")
    model2.train()
    out = model2(input_ids=ids[:1], attention_mask=mask[:1])
    out = getattr(out, "logits", out)
    if out.shape != (1, 3):
        raise Wrong(f"for a batch of one sentence `forward` returned shape {tuple(out.shape)}; expected (1, 3).")
    out.sum().backward()
    if all(p.grad is None or not p.grad.abs().sum() for p in enc.parameters()):
        raise Wrong("with freeze_encoder=False no gradient reaches the encoder: do not run it under "
                    "`torch.no_grad()` (or detach its output) in `forward`, or fine-tuning changes nothing.")


# ---------------------------------------------------------------- q3

@functools.lru_cache(maxsize=None)
def _byte_tokenizer():
    """A real Hugging Face byte-level tokenizer with no merges: every byte is a token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@functools.lru_cache(maxsize=None)
def _tiny_llama_state():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(11)
    cfg = LlamaConfig(vocab_size=len(_byte_tokenizer()), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, attention_dropout=0.5, tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():  # larger weights so that dropout visibly changes the output
            p.mul_(8.0) if p.ndim > 1 else None
    return cfg, model.state_dict()


def _tiny_llama():
    from transformers import LlamaForCausalLM
    cfg, state = _tiny_llama_state()
    model = LlamaForCausalLM(cfg)
    model.load_state_dict(state)
    return model


_PROMPTS = [("Review: what a film\nSentiment:", " yes"), ("Review: dull\nSentiment:", " yikes"),
            ("Review: so-so\nSentiment:", " no"), ("Review: fine\nSentiment:", "!")]


def _as_float(x) -> float:
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise Wrong(f"`label_logprob` returned a tensor of shape {tuple(x.shape)}; return one number: the "
                        "sum of the label tokens' log-probabilities.")
        return float(x.detach())
    try:
        return float(x)
    except (TypeError, ValueError):
        raise Wrong(f"`label_logprob` returned {type(x).__name__}; return a float.") from None


def _eval_score(label_logprob) -> None:
    tok = _byte_tokenizer()
    model = _tiny_llama()
    _expected.verify(_TOPIC, "llama", torch.cat([p.detach().flatten() for p in model.parameters()]))
    model.train()  # as it would be after a training step
    for i, (prompt, label) in enumerate(_PROMPTS):
        torch.manual_seed(0)
        got = _as_float(label_logprob(model, tok, prompt, label))
        per_token = _expected.value(_TOPIC, f"label_logprobs/{i}")
        ref = float(per_token.sum())
        if abs(got - ref) <= 1e-3 * max(1.0, abs(ref)):
            continue
        n = len(per_token)
        if got > 0:
            raise Wrong(f"a log-probability cannot be positive (you returned {got:.3f}); sum the "
                        "log-softmax values of the label's tokens.")
        if n > 1 and abs(got - float(per_token[0])) < 1e-3:
            raise Wrong(f"you scored only the first token of the label {label!r}, which has {n} tokens. Label "
                        "words that share a first token would then tie; add the log-probability of EVERY "
                        "label token, each given the prompt and the label tokens before it.")
        if n > 1 and abs(got - float(per_token.mean())) < 1e-3:
            raise Wrong("you averaged the label tokens' log-probabilities; the label's log-probability is "
                        "their SUM (the chain rule: log P(a, b) = log P(a) + log P(b | a)).")
        if abs(got - ref) > 1e-3 * max(1.0, abs(ref)) and model.training:
            raise Wrong("the score differs from the eval-mode reference and the model is still in training "
                        "mode: dropout then changes the scores from call to call. Call `model.eval()` and "
                        "compute under `torch.no_grad()`.")
        raise Wrong(f"for prompt {prompt!r} and label {label!r} you returned {got:.4f}, the reference is "
                    f"{ref:.4f}. Remember that the logits at position t predict token t + 1, so each label token "
                    "is scored by the position just before it, not by its own. Tokenise prompt and label "
                    "separately without special tokens and concatenate the ids.")
    if model.training:
        raise Wrong("the scores are right but the model is left in training mode; put it in eval mode.")


q1 = Question(
    "q1", "mean pooling with the attention mask", ["mean_pool"], _eval_pool,
    twins=("tlcourse.text._masked_mean",),
    hints=["A sentence's embedding is the average of its real tokens' vectors; padding positions must not count.",
           "The attention mask is 1 for real tokens and 0 for padding. Give it a trailing dimension so it "
           "broadcasts against (batch, tokens, hidden), multiply, and sum over the token dimension.",
           "Divide each sentence's sum by its own number of real tokens (the mask summed over tokens, kept "
           "as a column). Do not squeeze the batch dimension and do not detach."],
    why="masked mean pooling makes a sentence's embedding independent of how much padding its batch "
        "needed, and it is how sentence-transformers models such as MiniLM were trained to be used.")

q2 = Question(
    "q2", "a classification head on the encoder", ["SentimentClassifier"], _eval_classifier,
    twins=("tlcourse.text._masked_mean",),
    hints=["Subclass nn.Module: keep the encoder as an attribute and add one new linear layer whose input "
           "size is the encoder's hidden size.",
           "Freezing or unfreezing is the `requires_grad` flag of every encoder parameter: it must be the "
           "opposite of `freeze_encoder`, whichever way the flag is set. The head always trains.",
           "`forward(input_ids, attention_mask)`: run the encoder with both, take `.last_hidden_state`, "
           "pool it with your `mean_pool` and the same mask, and return the head's raw logits."],
    why="one class covers both transfer recipes: frozen, it is a linear probe on sentence embeddings; "
        "unfrozen, the same code fine-tunes all 22M weights.")

q3 = Question(
    "q3", "label-word scoring with a causal LM", ["label_logprob"], _eval_score,
    twins=("tlcourse.lessons.nlp_transfer.lm_label_scores",),
    hints=["Score = log P(label | prompt) = the sum, over the label's tokens, of the log-probability the "
           "model gives each token after the prompt and the label tokens before it.",
           "Tokenise prompt and label separately (no special tokens), concatenate the ids, and run the model "
           "once in eval mode without gradients. The logits at position t are a prediction for token t + 1.",
           "Turn each position's logits into log-probabilities over the vocabulary. Each label token is "
           "scored by the prediction made one position before it (the first one by the prompt's last "
           "position); read off the log-probability of the token that actually follows there, for every "
           "label token, add them, and hand back a plain Python number."],
    why="scoring label words turns any causal LM into a classifier without training; summing over all "
        "of a label's tokens makes multi-token labels comparable with one-token ones.")

questions = QuestionSet(q1, q2, q3)
check, hint, grade = questions.check, questions.hint, questions.grade
