"""Notebook 01's checks: correct answers written different ways pass; plausible mistakes are named."""
import pytest
import torch
from torch import nn

from tlcourse.checks import feature_extraction as fe


# ---------------------------------------------------------------- q1 freeze_backbone

def freeze_loop(model):
    for p in model.parameters():
        p.requires_grad = False
    model.eval()
    return model


def freeze_chained(model):
    return model.requires_grad_(False).eval()


def freeze_without_eval(model):
    for p in model.parameters():
        p.requires_grad = False
    return model


def freeze_module_attribute(model):
    model.requires_grad = False  # sets a plain attribute: no effect on parameters
    model.eval()
    return model


def freeze_only_first_layer(model):
    for p in next(iter(model.children())).parameters():
        p.requires_grad = False
    return model.eval()


def freeze_no_return(model):
    model.requires_grad_(False).eval()


def freeze_eval_only(model):
    return model.eval()


def not_attempted(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("answer", [freeze_loop, freeze_chained])
def test_q1_accepts_correct_answers(answer):
    assert fe.q1.verdict(answer).correct


@pytest.mark.parametrize("answer, words", [
    (freeze_without_eval, "training mode"),
    (freeze_module_attribute, "requires_grad=True"),
    (freeze_only_first_layer, "requires_grad=True"),
    (freeze_no_return, "return"),
    (freeze_eval_only, "requires_grad=True"),
])
def test_q1_names_the_mistake(answer, words):
    v = fe.q1.verdict(answer)
    assert v.status == "wrong" and words in v.message


def test_q1_not_attempted():
    assert fe.q1.verdict(not_attempted).status == "not_attempted"
    assert fe.q1.verdict(None).status == "not_attempted"


# ---------------------------------------------------------------- q2 extract

def extract_loop(backbone, loader):
    backbone.eval()
    feats, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            feats.append(backbone(x))
            labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def extract_decorated(backbone, loader):
    backbone.eval()
    pairs = [(backbone(x), y) for x, y in loader]
    return torch.cat([f for f, _ in pairs]), torch.cat([y for _, y in pairs])


def extract_with_grad(backbone, loader):
    backbone.eval()
    feats, labels = [], []
    for x, y in loader:
        feats.append(backbone(x))
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def extract_train_mode(backbone, loader):
    feats, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            feats.append(backbone(x))
            labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def extract_lists(backbone, loader):
    backbone.eval()
    with torch.no_grad():
        return [backbone(x) for x, _ in loader], [y for _, y in loader]


def extract_drops_last_batch(backbone, loader):
    backbone.eval()
    feats, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            if len(x) == loader.batch_size:
                feats.append(backbone(x))
                labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def extract_detach_only(backbone, loader):
    # detach() removes the graph but the backbone still runs in training mode
    feats, labels = [], []
    for x, y in loader:
        feats.append(backbone(x).detach())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def extract_squeezed(backbone, loader):
    # .squeeze() drops the batch dimension when the last batch holds one image
    backbone.eval()
    feats, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            feats.append(backbone(x).squeeze())
            labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def extract_stacked_rows(backbone, loader):
    # one row at a time, stacked: right, whatever the batch sizes
    backbone.eval()
    with torch.no_grad():
        rows = [(f, t) for x, y in loader for f, t in zip(backbone(x), y)]
    return torch.stack([f for f, _ in rows]), torch.stack([t for _, t in rows])


@pytest.mark.parametrize("answer", [extract_loop, extract_decorated, extract_stacked_rows])
def test_q2_accepts_correct_answers(answer):
    assert fe.q2.verdict(answer).correct


@pytest.mark.parametrize("answer, words", [
    (extract_with_grad, "no_grad"),
    (extract_train_mode, "training mode"),
    (extract_lists, "torch.cat"),
    (extract_drops_last_batch, "last"),
    (extract_detach_only, "training mode"),
    (extract_squeezed, "ONE image"),
])
def test_q2_names_the_mistake(answer, words):
    v = fe.q2.verdict(answer)
    assert v.status == "wrong" and words in v.message


# ---------------------------------------------------------------- q3 head

def make_linear(feature_dim, num_classes):
    return nn.Linear(feature_dim, num_classes)


def make_softmax(feature_dim, num_classes):
    return nn.Sequential(nn.Linear(feature_dim, num_classes), nn.Softmax(dim=1))


def make_mlp(feature_dim, num_classes):
    return nn.Sequential(nn.Linear(feature_dim, 128), nn.ReLU(), nn.Linear(128, num_classes))


def make_hardcoded(feature_dim, num_classes):
    return nn.Linear(1280, num_classes)


def train_adam(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_linear(features.shape[1], num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(head(features), labels).backward()
        opt.step()
    return head


def train_adamw(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_linear(features.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        loss = loss_fn(head(features), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def train_adamw_functional(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = nn.Sequential(nn.Linear(features.shape[1], num_classes))
    opt = torch.optim.AdamW(list(head.parameters()), lr, weight_decay=weight_decay)
    step = 0
    while step < steps:
        opt.zero_grad(set_to_none=False)
        nn.functional.cross_entropy(head(features), labels, reduction="mean").backward()
        opt.step()
        step += 1
    return head


def train_no_zero_grad(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_linear(features.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        nn.functional.cross_entropy(head(features), labels).backward()
        opt.step()
    return head


def train_softmax_loss(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_linear(features.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(head(features).softmax(1), labels).backward()
        opt.step()
    return head


def train_ignores_arguments(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    return train_adamw(features, labels, num_classes)


def train_sgd_minibatch(features, labels, num_classes, **kw):
    head = nn.Linear(features.shape[1], num_classes)
    opt = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(20):
        for i in range(0, len(labels), 32):
            loss = loss_fn(head(features[i:i + 32]), labels[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head


def train_wrong_params(features, labels, num_classes, **kw):
    head = make_linear(features.shape[1], num_classes)
    other = nn.Linear(3, 3)
    opt = torch.optim.Adam(other.parameters(), lr=1e-2)  # the head is never updated
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(head(features), labels).backward()
        opt.step()
    return head


def train_in_place_normalise(features, labels, num_classes):
    features -= features.mean(0)
    return train_adam(features, labels, num_classes)


@pytest.mark.parametrize("make, train", [(make_linear, train_adamw), (make_linear, train_adamw_functional)])
def test_q3_accepts_correct_answers(make, train):
    assert fe.q3.verdict(make, train).correct


@pytest.mark.parametrize("make, train, words", [
    (make_softmax, train_adamw, "softmax"),
    (make_linear, train_adam, "AdamW"),
    (make_linear, train_no_zero_grad, "zero_grad"),
    (make_linear, train_softmax_loss, "probabilities"),
    (make_linear, train_ignores_arguments, "arguments"),
    (make_linear, train_sgd_minibatch, "weights differ"),
    (make_mlp, train_adamw, "exactly one"),
    (make_hardcoded, train_adamw, "feature_dim"),
    (make_linear, train_wrong_params, "optimizer"),
    (make_linear, train_in_place_normalise, "in place"),
])
def test_q3_names_the_mistake(make, train, words):
    v = fe.q3.verdict(make, train)
    assert v.status == "wrong" and words in v.message


def test_hints_are_tiered_and_words_only(capsys):
    q = fe.questions["q1"]
    q._hints_shown = 0
    first, second = q.hint(), q.hint()
    assert first != second and "1/" in first and "2/" in second
    for question in (fe.q1, fe.q2, fe.q3):
        assert all("def " not in h and "return " not in h for h in question.hints)


def test_check_finds_the_answer_by_name_in_the_caller(capsys):
    freeze_backbone = freeze_loop  # noqa: F841 - looked up by name, as in a notebook
    assert fe.q1.check() is None  # shows once; a returned value would be shown twice in a notebook
    assert capsys.readouterr().out.startswith("Correct:")
    fe.check("q1", freeze_without_eval)
    assert capsys.readouterr().out.startswith("Not quite:")


def test_grade_raises_with_the_feedback():
    with pytest.raises(AssertionError, match="training mode"):
        fe.q1.grade(freeze_without_eval)
    fe.q1.grade(freeze_loop)
    with pytest.raises(KeyError, match="q1"):
        fe.questions["q9"]


# ---------------------------------------------------------------- delegation to the library's own version

from delegation import assert_loses_points as _assert_loses_points  # noqa: E402
from delegation import library as _library  # noqa: E402


def test_q1_delegating_to_the_library_loses_its_points():
    set_trainable = _library(fe.q1, "set_trainable")

    def freeze_backbone(model):
        set_trainable(model, False)
        return model.eval()

    _assert_loses_points(fe.q1, freeze_backbone)


def test_q2_delegating_to_the_library_loses_its_points():
    extract_features = _library(fe.q2, "extract_features")

    def extract(backbone, loader):
        return extract_features(backbone, loader.dataset, progress=False)

    _assert_loses_points(fe.q2, extract)


@pytest.mark.parametrize("twin", ["train_linear_head", "train_head_on_features"])
def test_q3_delegating_to_the_library_loses_its_points(twin):
    library = _library(fe.q3, twin)

    def make_head(feature_dim, num_classes):
        return nn.Linear(feature_dim, num_classes)

    def train_head(features, labels, num_classes):
        if twin == "train_linear_head":
            return library(features, labels, num_classes)
        head = make_head(features.shape[1], num_classes)
        library(head, features, labels, features, labels, epochs=30, lr=1e-2)
        return head

    _assert_loses_points(fe.q3, make_head, train_head)
