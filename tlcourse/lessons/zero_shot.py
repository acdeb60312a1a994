"""Notebook 06, zero-shot learning: the helpers only that notebook uses.

What the notebook calls in one line, so that its cells show the method and
not the bookkeeping:

- :func:`embed_texts` (from :mod:`tlcourse.text`): MiniLM sentence embeddings
  (mean pooling over the tokens, cached on disk), *not* normalised, so that
  cosine similarity has to be computed properly by whoever uses them;
- the Fashion-MNIST semantic side information: :data:`FASHION_DESCRIPTIONS`
  (one sentence per class) and a small class-attribute table
  (:data:`FASHION_ATTRIBUTES`, :data:`FASHION_CLASS_ATTRIBUTES`);
- the seen/unseen class split (:func:`seen_unseen_split`);
- :func:`fit_projection`, the DeViSE-style training loop that calls a
  *step function you write*; :func:`fit_attribute_predictors` for DAP;
- :func:`calibrated_stacking`, the seen-class bias correction sweep for
  generalised zero-shot learning, and :func:`prediction_counts` to see
  hubness and bias;
- :func:`clip_zero_shot`, real image zero-shot with CLIP, online only.

The graded pieces of the notebook (cosine-similarity prediction, the
projection step, attribute-to-class inference, the GZSL score) are *not*
here: the exercise is to write them.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..assets import is_online
from ..data import FASHION_CLASSES
from ..device import pick_device
from ..train import run_steps

# ------------------------------------------------------------------ semantic side information

FASHION_DESCRIPTIONS = (
    "a T-shirt: a short-sleeved top worn on the upper body",
    "trousers: long pants with two legs, worn on the lower body",
    "a pullover: a knitted long-sleeved sweater pulled over the head",
    "a dress: a one-piece garment for women covering body and legs",
    "a coat: a long-sleeved outer garment with buttons or a zip at the front",
    "a sandal: an open summer shoe with straps",
    "a shirt: a long-sleeved top with a collar and buttons down the front",
    "a sneaker: a low sports shoe with laces and a rubber sole",
    "a bag: a handbag with handles, carried rather than worn",
    "an ankle boot: a shoe that covers the ankle, often with a heel",
)

FASHION_ATTRIBUTES = (
    "worn on the upper body",
    "covers the legs",
    "has long sleeves",
    "footwear",
    "opens at the front (buttons or zip)",
    "open, with straps",
    "covers the ankle",
    "has laces",
    "carried, not worn",
    "one piece from shoulders to legs",
    "worn over other clothes",
)

#: rows follow FASHION_CLASSES, columns FASHION_ATTRIBUTES (1 = the class has it)
FASHION_CLASS_ATTRIBUTES = np.array([
    # up  leg slv ft  frt opn ank lac car one ovr
    [1,   0,  0,  0,  0,  0,  0,  0,  0,  0,  0],  # T-shirt/top
    [0,   1,  0,  0,  0,  0,  0,  0,  0,  0,  0],  # Trouser
    [1,   0,  1,  0,  0,  0,  0,  0,  0,  0,  0],  # Pullover
    [1,   1,  0,  0,  0,  0,  0,  0,  0,  1,  0],  # Dress
    [1,   0,  1,  0,  1,  0,  0,  0,  0,  0,  1],  # Coat
    [0,   0,  0,  1,  0,  1,  0,  0,  0,  0,  0],  # Sandal
    [1,   0,  1,  0,  1,  0,  0,  0,  0,  0,  0],  # Shirt
    [0,   0,  0,  1,  0,  0,  0,  1,  0,  0,  0],  # Sneaker
    [0,   0,  0,  0,  0,  0,  0,  0,  1,  0,  0],  # Bag
    [0,   0,  0,  1,  0,  0,  1,  0,  0,  0,  0],  # Ankle boot
], dtype=np.float32)

#: the classes held out as unseen by default: each is described by attributes and words the seen classes also have
DEFAULT_UNSEEN = ("Trouser", "Pullover", "Sandal")

#: label phrasings for zero-shot sentiment on Rotten Tomatoes: (rotten, fresh)
SENTIMENT_PHRASINGS = {
    "rotten / fresh": ("rotten", "fresh"),
    "bad / good": ("bad", "good"),
    "negative / positive": ("negative", "positive"),
    "a negative movie review / a positive movie review": ("a negative movie review", "a positive movie review"),
    "This movie is terrible. / This movie is great.": ("This movie is terrible.", "This movie is great."),
    "a boring, badly made film ... / a moving, brilliantly made film ...": (
        "a boring, badly made film that wastes your time",
        "a moving, brilliantly made film that is worth watching"),
}


#: Ten hand-written (rotten, fresh) descriptions for a prompt ensemble: several wordings of each label,
#: averaged, are a steadier description than any one of them (CLIP averages 80 prompts per class).
SENTIMENT_ENSEMBLE = (
    ("a negative movie review", "a positive movie review"),
    ("a bad movie", "a good movie"),
    ("This movie is terrible.", "This movie is great."),
    ("a boring, badly made film that wastes your time", "a moving, brilliantly made film that is worth watching"),
    ("I hated this film.", "I loved this film."),
    ("a disappointing, dull movie", "a delightful, entertaining movie"),
    ("the worst film of the year", "the best film of the year"),
    ("an awful movie", "a wonderful movie"),
    ("poorly acted and badly written", "well acted and beautifully written"),
    ("a waste of time", "worth your time"),
)


def label_prototypes(pairs: Sequence[tuple[str, ...]], embed: Callable | None = None) -> torch.Tensor:
    """One embedding per label from several wordings of it: the mean of their unit-length embeddings.

    ``pairs``: one tuple of label texts per wording, e.g. ``[("bad", "good"), ("awful", "great")]``.
    Returns (labels, D). ``embed`` defaults to MiniLM's :func:`embed_texts`.
    """
    if not pairs:
        raise ValueError("label_prototypes needs at least one wording, e.g. [('bad', 'good')]")
    if len({len(p) for p in pairs}) != 1:
        raise ValueError("every wording must give one text per label, in the same label order")
    if embed is None:
        from ..text import embed_texts as embed
    per_wording = torch.stack([F.normalize(torch.as_tensor(embed(list(p))).float(), dim=1) for p in pairs])
    return per_wording.mean(dim=0)


def seen_unseen_split(unseen: Sequence[str] = DEFAULT_UNSEEN,
                      classes: Sequence[str] = FASHION_CLASSES) -> tuple[list[int], list[int]]:
    """``(seen, unseen)`` class indices, both sorted, from the names of the unseen classes."""
    bad = [u for u in unseen if u not in classes]
    if bad:
        raise ValueError(f"unknown class names {bad}; classes are {list(classes)}")
    unseen_idx = sorted(classes.index(u) for u in unseen)
    return [i for i in range(len(classes)) if i not in unseen_idx], unseen_idx


def few_shot_text_probe(train_emb: torch.Tensor, train_y, test_emb: torch.Tensor, test_y,
                        shots: Sequence[int], seeds: Sequence[int] = (0, 1, 2)) -> dict[int, list[float]]:
    """Test accuracy of a logistic-regression probe on ``k`` labelled texts per class, for each k and seed.

    The embeddings are L2-normalised first; the probe is scikit-learn's
    ``LogisticRegression`` (the same linear probe as in the NLP notebook).
    """
    from sklearn.linear_model import LogisticRegression

    from ..data import stratified_indices
    xtr = F.normalize(torch.as_tensor(train_emb).float(), dim=1).numpy()
    xte = F.normalize(torch.as_tensor(test_emb).float(), dim=1).numpy()
    ytr, yte = np.asarray(train_y), np.asarray(test_y)
    out: dict[int, list[float]] = {}
    for k in shots:
        out[k] = []
        for s in seeds:
            rows = stratified_indices(ytr, per_class=k, seed=s)
            clf = LogisticRegression(C=10.0, max_iter=2000).fit(xtr[rows], ytr[rows])
            out[k].append(float((clf.predict(xte) == yte).mean()))
    return out


# ------------------------------------------------------------------ DeViSE-style projection

def fit_projection(step: Callable, features: torch.Tensor, labels: torch.Tensor, label_embeddings: torch.Tensor,
                   *, epochs: int = 5, batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-4,
                   temperature: float = 0.05, seed: int = 0,
                   device: torch.device | str | None = None) -> tuple[nn.Linear, list[float]]:
    """Train a linear map from image features into the label-embedding space.

    ``step(projection, optimizer, x, targets, class_embeddings, temperature)``
    is one optimisation step (you write it) returning the loss as a float.
    The loop trains on exactly the classes present in ``labels`` (so pass
    seen-class images only): ``targets`` index the rows of
    ``class_embeddings = label_embeddings[those classes]``. Returns the
    projection (with ``trained_classes``, the classes it saw) on the CPU and
    the mean loss of each epoch. Trains on ``device`` (default
    :func:`~tlcourse.device.pick_device`).
    """
    device = pick_device(device)
    features = torch.as_tensor(features).float()
    labels = torch.as_tensor(labels).long()
    label_embeddings = torch.as_tensor(label_embeddings).float()
    classes = torch.unique(labels)
    lookup = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    lookup[classes] = torch.arange(len(classes))
    targets = lookup[labels]
    class_embeddings = label_embeddings[classes]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    projection = nn.Linear(features.shape[1], label_embeddings.shape[1]).to(device)
    features, targets, class_embeddings = features.to(device), targets.to(device), class_embeddings.to(device)
    optimizer = torch.optim.AdamW(projection.parameters(), lr=lr, weight_decay=weight_decay)
    projection.train()

    def one_step(idx):
        return float(step(projection, optimizer, features[idx], targets[idx], class_embeddings, temperature))

    history = []
    for _ in range(epochs):
        perm = torch.randperm(len(features), generator=g)
        batches = [perm[start:start + batch_size] for start in range(0, len(perm), batch_size)]
        history.append(float(np.mean(run_steps(one_step, batches, device=device))))
    projection.cpu().eval()
    projection.trained_classes = tuple(int(c) for c in classes)
    return projection, history


@torch.no_grad()
def project(projection: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Image features mapped into the label-embedding space (not normalised)."""
    projection.eval()
    return projection(torch.as_tensor(features).float())


# ------------------------------------------------------------------ DAP attribute predictors

def fit_attribute_predictors(features: torch.Tensor, labels: torch.Tensor, class_attributes,
                             *, steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-3,
                             seed: int = 0, device: torch.device | str | None = None) -> nn.Linear:
    """One logistic-regression classifier per attribute, trained jointly (one Linear, BCE loss).

    Each image's attribute targets are its class's row of ``class_attributes``.
    Train on seen-class images only. Attributes that are constant over the
    training classes cannot be learned; the returned model records them in
    ``unlearnable`` (a list of column indices). Trains on ``device`` (default
    :func:`~tlcourse.device.pick_device`) and returns the model on the CPU.
    """
    device = pick_device(device)
    features = torch.as_tensor(features).float()
    labels = torch.as_tensor(labels).long()
    attrs = torch.as_tensor(np.asarray(class_attributes), dtype=torch.float32)
    targets = attrs[labels]
    torch.manual_seed(seed)
    model = nn.Linear(features.shape[1], attrs.shape[1]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    pos = targets.mean(0).clamp(1e-3, 1 - 1e-3)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=((1 - pos) / pos).to(device))  # balance rare attributes
    x, t = features.to(device), targets.to(device)

    def step(_):
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()

    run_steps(step, range(steps), device=device)
    model.cpu().eval()
    model.unlearnable = [int(j) for j in torch.nonzero(targets.min(0).values == targets.max(0).values).flatten()]
    model.trained_classes = tuple(int(c) for c in torch.unique(labels))
    return model


@torch.no_grad()
def predict_attributes(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """``p(attribute present | image)``, shape (N, num_attributes)."""
    model.eval()
    return torch.sigmoid(model(torch.as_tensor(features).float()))


# ------------------------------------------------------------------ GZSL analysis

def _per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[int]) -> float:
    accs = [float((y_pred[y_true == c] == c).mean()) for c in classes if (y_true == c).any()]
    return float(np.mean(accs)) if accs else 0.0


@torch.no_grad()
def calibrated_stacking(projected: torch.Tensor, label_embeddings: torch.Tensor, y_true, seen: Sequence[int],
                        unseen: Sequence[int], gammas: Sequence[float]) -> list[dict]:
    """Generalised zero-shot accuracy when ``gamma`` is subtracted from every seen class's cosine score.

    Chao et al. (2016): a model trained on seen classes scores them too high;
    a constant penalty trades seen accuracy for unseen accuracy. Returns one
    row per gamma: ``gamma``, ``seen`` and ``unseen`` (mean per-class
    accuracy over all classes as candidates) and their harmonic mean ``H``.
    """
    sims = F.normalize(torch.as_tensor(projected).float(), dim=1) @ \
        F.normalize(torch.as_tensor(label_embeddings).float(), dim=1).T
    y = np.asarray(y_true)
    penalty = torch.zeros(sims.shape[1])
    penalty[list(seen)] = 1.0
    rows = []
    for gamma in gammas:
        pred = (sims - gamma * penalty).argmax(1).numpy()
        s, u = _per_class_accuracy(y, pred, seen), _per_class_accuracy(y, pred, unseen)
        rows.append(dict(gamma=float(gamma), seen=s, unseen=u, H=2 * s * u / (s + u) if s + u > 0 else 0.0))
    return rows


def prediction_counts(pred, classes: Sequence[str] = FASHION_CLASSES, among: Sequence[int] | None = None) -> str:
    """A one-line summary of how many test images were assigned to each class (hubness at a glance)."""
    pred = np.asarray(pred)
    among = range(len(classes)) if among is None else among
    return ", ".join(f"{classes[c]}: {int((pred == c).sum())}" for c in among)


# ------------------------------------------------------------------ CLIP, online only

CLIP_MODEL = "openai/clip-vit-base-patch32"


def clip_zero_shot(images: torch.Tensor, labels, class_names: Sequence[str] = FASHION_CLASSES,
                   template: str = "a photo of a {}.", model_name: str = CLIP_MODEL) -> float | None:
    """CLIP zero-shot accuracy on ``images`` (float in [0, 1], (N, C, H, W)), or None offline.

    Needs the Hugging Face hub: offline it prints why it is skipped and
    returns None, so a notebook calling it runs anywhere.
    """
    if not is_online():
        print(f"CLIP skipped: this machine is offline and {model_name} is not part of the course's offline "
              "assets (it would download about 600 MB from the Hugging Face hub). Online, this cell runs "
              "CLIP zero-shot on the same test images.")
        return None
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_name).eval()
    processor = CLIPProcessor.from_pretrained(model_name)
    x = torch.as_tensor(images).float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    pil = [(img.permute(1, 2, 0).numpy() * 255).astype(np.uint8) for img in x]
    prompts = [template.format(c.lower()) for c in class_names]
    preds = []
    with torch.no_grad():
        text_in = processor(text=prompts, return_tensors="pt", padding=True)
        t = F.normalize(model.get_text_features(**text_in), dim=-1)
        for start in range(0, len(pil), 64):
            img_in = processor(images=pil[start:start + 64], return_tensors="pt")
            v = F.normalize(model.get_image_features(**img_in), dim=-1)
            preds.append((v @ t.T).argmax(1))
    return float((torch.cat(preds) == torch.as_tensor(labels)).float().mean())
