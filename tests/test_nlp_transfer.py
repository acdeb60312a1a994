"""tlcourse.lessons.nlp_transfer on tiny models and texts: fast, offline, no downloads."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tlcourse.lessons import nlp_transfer as nlp
from tlcourse.checks import nlp_transfer as C
from tlcourse.data import TextDataset
from tlcourse.tables import results_table

GOOD = ["good great fine", "great good", "fine and good", "lovely great", "good good fine", "great lovely fine"]
BAD = ["bad awful poor", "awful bad", "poor and bad", "dull awful", "bad bad poor", "awful dull poor"]


@pytest.fixture(scope="module")
def tok():
    return C._byte_tokenizer()


def _tiny_bert(vocab: int, seed: int = 0):
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    return BertModel(cfg, add_pooling_layer=False).eval()


def _data():
    return TextDataset(GOOD + BAD, np.array([1] * len(GOOD) + [0] * len(BAD)), name="tiny")


class _Clf(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(nlp._masked_mean(h, attention_mask))


def test_masked_mean_ignores_padding():
    h = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = nlp._masked_mean(h, mask)
    assert out.shape == (2, 3)
    assert torch.allclose(out[0], h[0, :2].mean(0))
    assert torch.allclose(out[1], h[1].mean(0))


def test_encode_and_show_tokens(tok, capsys):
    batch = nlp.encode(tok, ["ab", "abcd"], max_length=3)
    assert batch["input_ids"].shape == (2, 3)
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    nlp.show_tokens(tok, ["ab", "abcd"])
    out = capsys.readouterr().out
    assert "mask" in out and "2 padding" in out


def test_sentence_embeddings_cached(tok, fresh_cache, monkeypatch):
    enc = _tiny_bert(len(tok))
    data = _data()
    emb, y = nlp.sentence_embeddings(tok, enc, data, max_length=16, batch_size=5)
    assert emb["mean"].shape == (12, 16) and emb["cls"].shape == (12, 16) and y.tolist() == data.labels.tolist()
    files = list((fresh_cache / "embeddings").glob("*.pt"))
    assert len(files) == 1
    b = nlp.encode(tok, data.texts[:3], max_length=16)
    with torch.no_grad():
        h = enc(**b).last_hidden_state
    assert torch.allclose(emb["mean"][:3], nlp._masked_mean(h, b["attention_mask"]), atol=1e-5)
    monkeypatch.setattr(enc, "forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cache missed")))
    again, _ = nlp.sentence_embeddings(tok, enc, data, max_length=16)
    assert torch.equal(again["mean"], emb["mean"])
    with pytest.raises(AssertionError, match="cache missed"):
        nlp.sentence_embeddings(tok, enc, data, max_length=8)  # another key


def test_tfidf_and_linear_probe():
    data = _data()
    r = nlp.tfidf_baseline(data, data)
    assert r.accuracy == 1.0 and r.trainable > 1 and len(r.predictions) == 12
    x = torch.tensor(data.labels, dtype=torch.float32)[:, None] + 0.1 * torch.randn(12, 3)
    p = nlp.linear_probe(x, data.labels, x, data.labels)
    assert p.accuracy == 1.0 and p.trainable == 4


def test_warmup_schedule_shape():
    values = nlp.schedule_values(20, 4, 1e-3)
    assert len(values) == 20
    assert values[0] < values[1] < values[3] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(values[4:], values[5:])) and values[-1] < 2e-4


def test_freeze_lower_layers(tok):
    enc = nlp.freeze_lower_layers(_tiny_bert(len(tok)), 1)
    assert not any(p.requires_grad for p in enc.embeddings.parameters())
    assert not any(p.requires_grad for p in enc.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in enc.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in nlp.freeze_lower_layers(_tiny_bert(len(tok)), 0).parameters())


def test_finetune_and_predict(tok):
    torch.manual_seed(0)
    model = _Clf(_tiny_bert(len(tok)))
    before = model.encoder.encoder.layer[1].output.dense.weight.clone()
    hist = nlp.finetune(model, tok, _data(), steps=6, lr=1e-3, batch_size=4, max_length=16, log_every=3,
                        device="cpu")
    assert len(hist["train_loss"]) == 2 and all(np.isfinite(hist["train_loss"]))
    assert not torch.equal(before, model.encoder.encoder.layer[1].output.dense.weight)
    model.train()
    logits = nlp.predict_texts(model, tok, _data(), max_length=16, batch_size=5)
    assert logits.shape == (12, 2) and model.training
    assert nlp.trainable_parameters(model) == sum(p.numel() for p in model.parameters())


def test_prompts_and_demos():
    demos = nlp.pick_demos(_data(), [" negative", " positive"], per_class=2, seed=0)
    assert sorted(lab for _, lab in demos) == [" negative", " negative", " positive", " positive"]
    prompt = nlp.few_shot_prompt("so good", demos)
    assert prompt.startswith(nlp.INSTRUCTION) and prompt.endswith("Review: so good\nSentiment:")
    assert prompt == nlp.prompt_prefix(demos) + nlp.review_prompt("so good")
    assert all(t in prompt for t, _ in demos)
    assert nlp.zero_shot_prompt("meh") == nlp.INSTRUCTION + "Review: meh\nSentiment:"


def _naive(model, tok, prompt, label):
    p, l = tok(prompt, add_special_tokens=False)["input_ids"], tok(label, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=torch.tensor([p + l])).logits[0], -1)
    return sum(float(lp[len(p) - 1 + i, t]) for i, t in enumerate(l))


def test_lm_label_scores_match_naive_reference(tok):
    model = C._tiny_llama().eval()
    prompts = ["Review: fine\nSentiment:", "Review: a long and winding one\nSentiment:", "R:"]
    for labels in ([" yes", " yikes", "!"], ["!", "?"]):
        got = nlp.lm_label_scores(model, tok, prompts, labels, batch_size=2)
        ref = torch.tensor([[_naive(model, tok, p, l) for l in labels] for p in prompts])
        assert torch.allclose(got, ref, atol=1e-4)
    prefix = "Is it good?\n\n"
    model.train()
    cached = nlp.lm_label_scores(model, tok, prompts, [" yes", " no"], prefix=prefix, batch_size=2)
    assert model.training  # mode restored
    plain = nlp.lm_label_scores(model, tok, prompts, [" yes", " no"], prefix=prefix, cache_prefix=False)
    ref = torch.tensor([[_naive(model.eval(), tok, prefix + p, l) for l in (" yes", " no")] for p in prompts])
    assert torch.allclose(cached, plain, atol=1e-4) and torch.allclose(plain, ref, atol=1e-4)


def test_results_table_and_interval():
    df = results_table([dict(approach="a", accuracy=0.5, trainable=1234),
                        dict(approach="b", accuracy=0.7, trainable=float("nan"))], index="approach",
                       thousands=("trainable",))
    assert list(df.index) == ["a", "b"] and df.loc["a", "trainable"] == "1,234" and df.loc["b", "trainable"] == ""
    assert nlp.accuracy_interval(0.5, 100) == pytest.approx(0.098, abs=1e-3)


def test_converted_language_model_is_readable_by_other_users(fresh_cache):
    """A grading kernel runs as another uid and reads the course cache: the converted SmolLM2 must be
    readable by all (mkdtemp and safetensors make owner-only files), and an owner-only copy left by an
    older version is opened up on the next use."""
    from tlcourse.text import prepare_causal_lm

    out = prepare_causal_lm()
    modes = {f.name: f.stat().st_mode & 0o777 for f in out.iterdir()}
    assert out.stat().st_mode & 0o777 == 0o755 and "model.safetensors" in modes
    assert all(m == 0o644 for m in modes.values()), modes
    out.chmod(0o700)
    (out / "model.safetensors").chmod(0o600)
    again = prepare_causal_lm()
    assert again == out and out.stat().st_mode & 0o777 == 0o755
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o644
