"""tlcourse.lessons.zero_shot: the plumbing of notebook 06 (fast, offline)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tlcourse.data import FASHION_CLASSES
from tlcourse.lessons import zero_shot as zs
from tlcourse.tables import text_table
from tlcourse.text import _masked_mean, embed_texts


def _step(projection, optimizer, x, targets, class_embeddings, temperature):
    z = F.normalize(projection(x), dim=1)
    loss = F.cross_entropy(z @ F.normalize(class_embeddings, dim=1).T / temperature, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _blobs(classes=5, per_class=30, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 3
    y = torch.arange(classes).repeat_interleave(per_class)
    return centres[y] + torch.randn(len(y), dim, generator=g), y


def test_side_information_is_consistent():
    assert len(zs.FASHION_DESCRIPTIONS) == len(FASHION_CLASSES)
    A = zs.FASHION_CLASS_ATTRIBUTES
    assert A.shape == (len(FASHION_CLASSES), len(zs.FASHION_ATTRIBUTES))
    assert set(np.unique(A)) <= {0.0, 1.0}
    assert len({tuple(r) for r in A}) == len(A), "two classes share an attribute signature"
    seen, unseen = zs.seen_unseen_split()
    learnable = [j for j in range(A.shape[1]) if len(set(A[seen, j])) == 2]
    sigs = {tuple(A[u, learnable]) for u in unseen}
    assert len(sigs) == len(unseen), "unseen classes must differ in attributes the seen classes teach"
    for neg, pos in zs.SENTIMENT_PHRASINGS.values():
        assert neg and pos and neg != pos


def test_seen_unseen_split():
    seen, unseen = zs.seen_unseen_split(("Sandal", "Trouser"))
    assert unseen == [1, 5] and seen == [0, 2, 3, 4, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="unknown class"):
        zs.seen_unseen_split(("Hat",))


def test_fit_projection_learns_and_records_its_classes():
    x, y = _blobs()
    label_emb = torch.randn(7, 6, generator=torch.Generator().manual_seed(1))
    keep = y != 2  # class 2 held out
    proj, hist = zs.fit_projection(_step, x[keep], y[keep], label_emb, epochs=15, batch_size=32, lr=1e-2, seed=0)
    assert proj.trained_classes == (0, 1, 3, 4)
    assert hist[-1] < hist[0]
    z = zs.project(proj, x[keep])
    pred = (F.normalize(z, dim=1) @ F.normalize(label_emb[[0, 1, 3, 4]], dim=1).T).argmax(1)
    assert (torch.tensor([0, 1, 3, 4])[pred] == y[keep]).float().mean() > 0.9
    proj2, hist2 = zs.fit_projection(_step, x[keep], y[keep], label_emb, epochs=15, batch_size=32, lr=1e-2, seed=0)
    assert hist == hist2, "same seed, same run"


def test_fit_projection_passes_seen_targets_and_embeddings():
    seen_calls = []

    def spy(projection, optimizer, x, targets, class_embeddings, temperature):
        seen_calls.append((targets.clone(), class_embeddings.clone(), temperature))
        return 0.0

    x, y = _blobs(classes=4, per_class=5)
    emb = torch.arange(4 * 3, dtype=torch.float32).view(4, 3)
    keep = torch.isin(y, torch.tensor([1, 3]))
    zs.fit_projection(spy, x[keep], y[keep], emb, epochs=1, batch_size=4, temperature=0.1)
    targets = torch.cat([c[0] for c in seen_calls])
    assert set(targets.tolist()) == {0, 1} and len(targets) == 10
    assert torch.equal(seen_calls[0][1], emb[[1, 3]]) and seen_calls[0][2] == 0.1


def test_attribute_predictors_learn_and_flag_unlearnable():
    x, y = _blobs(classes=4, per_class=40, seed=3)
    A = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    keep = y != 3  # attribute 2 only belongs to class 3: unlearnable
    model = zs.fit_attribute_predictors(x[keep], y[keep], A, steps=200)
    assert model.unlearnable == [2] and model.trained_classes == (0, 1, 2)
    p = zs.predict_attributes(model, x[keep])
    assert p.shape == (int(keep.sum()), 3) and (p >= 0).all() and (p <= 1).all()
    acc = ((p[:, :2] > 0.5).float() == torch.as_tensor(A)[y[keep]][:, :2]).float().mean()
    assert acc > 0.9


def test_calibrated_stacking_trades_seen_for_unseen():
    emb = torch.eye(4)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    # unseen images (2, 3) sit between their label and a seen label, slightly closer to the seen one
    proj = torch.tensor([[1, 0, 0, 0], [1, .1, 0, 0], [0, 1, 0, 0], [0, 1, .1, 0],
                         [.6, 0, .5, 0], [0, .6, .5, 0], [.6, 0, 0, .5], [0, .6, 0, .5]], dtype=torch.float32)
    rows = zs.calibrated_stacking(proj, emb, y, [0, 1], [2, 3], [0.0, 0.2, 2.0])
    assert rows[0]["seen"] == 1.0 and rows[0]["unseen"] == 0.0 and rows[0]["H"] == 0.0
    assert rows[1]["seen"] == 1.0 and rows[1]["unseen"] == 1.0 and rows[1]["H"] == pytest.approx(1.0)
    assert rows[2]["seen"] == 0.0 and rows[2]["unseen"] == 1.0


def test_prediction_counts_and_table(capsys):
    assert zs.prediction_counts([1, 1, 5], among=[1, 5]) == "Trouser: 2, Sandal: 1"
    text = text_table(("setting", "method", "accuracy"), [("a", "b", "0.5"), ("longer setting", "m", "0.25")])
    assert text.splitlines()[0].split() == ["setting", "method", "accuracy"] and "longer setting  m" in text


def test_few_shot_text_probe_is_seeded():
    x, y = _blobs(classes=2, per_class=40, dim=8, seed=5)
    out = zs.few_shot_text_probe(x[::2], y[::2], x[1::2], y[1::2], shots=(2, 8), seeds=(0, 1))
    assert set(out) == {2, 8} and all(len(v) == 2 for v in out.values())
    assert np.mean(out[8]) > 0.8
    assert out == zs.few_shot_text_probe(x[::2], y[::2], x[1::2], y[1::2], shots=(2, 8), seeds=(0, 1))


def test_clip_is_skipped_offline_with_a_reason(capsys):
    assert zs.clip_zero_shot(torch.zeros(2, 1, 8, 8), torch.zeros(2)) is None
    assert "offline" in capsys.readouterr().out


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(_masked_mean(hidden, mask), torch.tensor([[2.0, 2.0]]))


def test_embed_texts_padding_invariant_and_cached():
    short = "a fine film"
    alone = embed_texts([short], cache=False)
    batched = embed_texts([short, "a much longer review that needs a lot of padding for the short one"])
    assert alone.shape == (1, 384)
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    again = embed_texts([short, "a much longer review that needs a lot of padding for the short one"])
    assert torch.equal(batched, again)
    assert not torch.allclose(batched.norm(dim=1), torch.ones(2)), "embeddings are returned unnormalised"


def test_label_prototypes_average_unit_length_wordings():
    vectors = {"bad": [3.0, 0.0], "awful": [0.0, 2.0], "good": [0.0, 5.0], "great": [1.0, 0.0]}
    embed = lambda texts: torch.tensor([vectors[t] for t in texts])
    protos = zs.label_prototypes([("bad", "good"), ("awful", "great")], embed=embed)
    assert torch.allclose(protos, torch.tensor([[0.5, 0.5], [0.5, 0.5]])), "each wording counts once, whatever its length"
    one = zs.label_prototypes([("bad", "good")], embed=embed)
    assert torch.allclose(one, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="at least one wording"):
        zs.label_prototypes([], embed=embed)
    with pytest.raises(ValueError, match="same label order"):
        zs.label_prototypes([("bad", "good"), ("awful",)], embed=embed)
    assert len(zs.SENTIMENT_ENSEMBLE) >= 10 and all(len(p) == 2 for p in zs.SENTIMENT_ENSEMBLE)
