"""The notebook-03 checks accept correct answers written in different ways and
reject each plausible mistake with a message that names it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tlcourse.checks import nlp_transfer as C


def _verdict(question, answer):
    return question.verdict(answer)


def _not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- q1 mean pooling

def pool_a(h, m):
    m = m.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def pool_b(h, m):
    w = m.float()
    return torch.einsum("bth,bt->bh", h, w) / w.sum(dim=1, keepdim=True)


def pool_loop(h, m):
    return torch.stack([h[i, m[i].bool()].mean(0) for i in range(h.shape[0])])


@pytest.mark.parametrize("answer", [pool_a, pool_b, pool_loop])
def test_q1_correct(answer):
    v = _verdict(C.q1, answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, keyword", [
    (lambda h, m: h.mean(1), "padding"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(1), "divide"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(1) / h.shape[1], "real tokens"),
    (lambda h, m: h[:, 0], "[CLS]"),
    (lambda h, m: pool_a(h, m).squeeze(), "batch dimension"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(0) / m.sum(0).clamp(min=1).unsqueeze(-1), "batch (dim 0)"),
    (lambda h, m: pool_a(h, m).detach(), "gradient"),
])
def test_q1_wrong(answer, keyword):
    v = _verdict(C.q1, answer)
    assert v.status == "wrong" and keyword in v.message, v.message


def test_q1_not_attempted():
    assert _verdict(C.q1, _not_implemented).status == "not_attempted"


# ---------------------------------------------------------------- q2 classification head

class HeadA(nn.Module):
    def __init__(self, encoder, num_classes=2, freeze_encoder=False):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        for p in encoder.parameters():
            p.requires_grad = not freeze_encoder

    def forward(self, input_ids, attention_mask):
        return self.head(pool_a(self.encoder(input_ids=input_ids, attention_mask=attention_mask)
                                .last_hidden_state, attention_mask))


class HeadB(nn.Module):  # dropout before the linear layer, requires_grad_ on the module
    def __init__(self, encoder, num_classes=2, freeze_encoder=False):
        super().__init__()
        self.body = encoder
        self.body.requires_grad_(not freeze_encoder)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(encoder.config.hidden_size, num_classes))

    def forward(self, input_ids, attention_mask):
        out = self.body(input_ids, attention_mask=attention_mask)
        return self.classifier(pool_b(out[0], attention_mask))


def _variant(**changes):
    """A HeadA with one mistake."""
    class Wrong(HeadA):
        def __init__(self, encoder, num_classes=2, freeze_encoder=False):
            nn.Module.__init__(self)
            self.encoder = encoder
            dim = changes.get("dim", encoder.config.hidden_size)
            self.head = nn.Linear(dim, num_classes)
            if changes.get("only_freeze"):
                if freeze_encoder:
                    for p in encoder.parameters():
                        p.requires_grad = False
            elif changes.get("attr_freeze"):
                encoder.requires_grad = not freeze_encoder
            elif changes.get("freeze_all"):
                for p in self.parameters():
                    p.requires_grad = not freeze_encoder
            else:
                for p in encoder.parameters():
                    p.requires_grad = not freeze_encoder

        def forward(self, input_ids, attention_mask):
            if changes.get("no_grad"):
                with torch.no_grad():
                    h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            else:
                h = self.encoder(input_ids=input_ids,
                                 attention_mask=None if changes.get("no_mask") else attention_mask).last_hidden_state
            pooled = {"cls": lambda: h[:, 0], "plain": lambda: h.mean(1)}.get(changes.get("pool"),
                                                                             lambda: pool_a(h, attention_mask))()
            out = self.head(pooled)
            return torch.softmax(out, -1) if changes.get("softmax") else out
    return Wrong


class NotRegistered(HeadA):
    def __init__(self, encoder, num_classes=2, freeze_encoder=False):
        super().__init__(encoder, num_classes, freeze_encoder)
        del self.encoder
        self.parts = [encoder]

    def forward(self, input_ids, attention_mask):
        h = self.parts[0](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(pool_a(h, attention_mask))


@pytest.mark.parametrize("answer", [HeadA, HeadB])
def test_q2_correct(answer):
    v = _verdict(C.q2, answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, keyword", [
    (_variant(dim=384), "hidden size"),
    (_variant(only_freeze=True), "in both directions"),
    (_variant(attr_freeze=True), "requires_grad"),
    (_variant(freeze_all=True), "head is frozen"),
    (_variant(pool="cls"), "[CLS]"),
    (_variant(pool="plain"), "padding"),
    (_variant(softmax=True), "logits"),
    (_variant(no_mask=True), "attention mask"),
    (_variant(no_grad=True), "gradient"),
    (NotRegistered, "registered"),
])
def test_q2_wrong(answer, keyword):
    v = _verdict(C.q2, answer)
    assert v.status == "wrong" and keyword in v.message, v.message


def test_q2_not_attempted():
    class Empty(nn.Module):
        def __init__(self, encoder, num_classes=2, freeze_encoder=False):
            raise NotImplementedError()
    assert _verdict(C.q2, Empty).status == "not_attempted"


# ---------------------------------------------------------------- q3 label scoring

def _ids(tok, s):
    return tok(s, add_special_tokens=False)["input_ids"]


def score_a(model, tokenizer, prompt, label):
    model.eval()
    p, l = _ids(tokenizer, prompt), _ids(tokenizer, label)
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=torch.tensor([p + l])).logits[0], -1)
    return sum(lp[len(p) - 1 + i, t].item() for i, t in enumerate(l))


def score_b(model, tokenizer, prompt, label):  # joint tokenisation, gather, tensor result
    model.eval()
    n = len(tokenizer.encode(prompt, add_special_tokens=False))
    ids = tokenizer(prompt + label, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    lp = logits[0, :-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
    return lp[n - 1:].sum()


def _score_with(first_only=False, mean=False, train=False, offset=0, prob=False):
    def score(model, tokenizer, prompt, label):
        if not train:
            model.eval()
        p, l = _ids(tokenizer, prompt), _ids(tokenizer, label)
        lp = torch.log_softmax(model(input_ids=torch.tensor([p + l])).logits[0], -1).detach()
        vals = [lp[len(p) - 1 + i + offset, t].item() for i, t in enumerate(l)]
        if first_only:
            vals = vals[:1]
        if prob:
            return float(torch.tensor(vals).sum().exp())
        return sum(vals) / (len(vals) if mean else 1)
    return score


@pytest.mark.parametrize("answer", [score_a, score_b])
def test_q3_correct(answer):
    v = _verdict(C.q3, answer)
    assert v.correct, v.message


@pytest.mark.parametrize("answer, keyword", [
    (_score_with(first_only=True), "first token"),
    (_score_with(mean=True), "SUM"),
    (_score_with(train=True), "training mode"),
    (_score_with(offset=1), "position t predict"),
    (_score_with(prob=True), "cannot be positive"),
])
def test_q3_wrong(answer, keyword):
    v = _verdict(C.q3, answer)
    assert v.status == "wrong" and keyword in v.message, v.message


def test_q3_not_attempted():
    assert _verdict(C.q3, _not_implemented).status == "not_attempted"


def test_probe_model_depends_on_mode_and_label_is_multi_token():
    tok, model = C._byte_tokenizer(), C._tiny_llama()
    assert len(tok(" yikes", add_special_tokens=False)["input_ids"]) == 6
    ids = torch.tensor([tok("Review: dull\nSentiment: yes", add_special_tokens=False)["input_ids"]])
    model.train()
    torch.manual_seed(0)
    a = model(input_ids=ids).logits
    model.eval()
    b = model(input_ids=ids).logits
    assert (a - b).abs().max() > 1e-2


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q1_and_q2_delegating_to_the_library_pooling_lose_their_points():
    masked_mean = _library(C.q1, "_masked_mean")

    def mean_pool(last_hidden_state, attention_mask):
        return masked_mean(last_hidden_state, attention_mask)

    _assert_loses_points(C.q1, mean_pool)

    class SentimentClassifier(nn.Module):
        def __init__(self, encoder, num_classes=2, freeze_encoder=False):
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(encoder.config.hidden_size, num_classes)
            for p in self.encoder.parameters():
                p.requires_grad = not freeze_encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(masked_mean(hidden, attention_mask))

    _assert_loses_points(C.q2, SentimentClassifier)


def test_q3_delegating_to_the_library_scorer_loses_its_points():
    lm_label_scores = _library(C.q3, "lm_label_scores")

    def label_logprob(model, tokenizer, prompt, label):
        return float(lm_label_scores(model, tokenizer, [prompt], [label])[0][0])

    _assert_loses_points(C.q3, label_logprob)
