"""Notebook 08: self-taught learning. An encoder pretrained with NT-Xent on unlabelled Fashion-MNIST images
of five *other* classes, against the same network from scratch and a pixel probe, on the first five classes.

The NT-Xent here is the benchmark's own reference (benchmarks are not installed with tlcourse, so a
student cannot import it); the notebook trains with the student's. Unlike the notebook, which
pretrains once, every seed here pretrains its own encoder, so the spread includes pretraining.

"progressive": progressive columns (Rusu et al. 2016) on MNIST digits 0-4 then 5-9, against fine-tuning
(task A kept) and a fresh column without laterals (task B). No published figure sits beside it: Rusu et al.'s
transfer scores are for reinforcement learning (Atari, mazes), not comparable.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ._rows import comparison

NOTEBOOK = "08"


def _nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device))


def self_taught(seeds, sizes) -> list[dict]:
    from tlcourse.lessons import self_taught as st

    t0 = time.perf_counter()
    data = st.load_self_taught_data(sizes["image_size"], pool=sizes["pool"])
    merged: dict[str, dict[int, list[float]]] = {}
    for seed in seeds:
        encoder, _ = st.pretrain_contrastive(data.pool, _nt_xent, sizes["temperature"], sizes["pretrain_epochs"],
                                             width=sizes["width"], batch_size=sizes["batch_size"], seed=seed)
        one = st.label_budget_runs(data, encoder, sizes["label_budgets"], [seed], sizes["finetune_steps"],
                                   width=sizes["width"])
        for name, by_k in one.items():
            for k, accs in by_k.items():
                merged.setdefault(name, {}).setdefault(k, []).extend(accs)
    seconds = time.perf_counter() - t0
    rows = []
    for k in sizes["label_budgets"]:
        setting = f"Fashion-MNIST classes 0-4, {k} labels/class; pool: classes 5-9 unlabelled"
        for method, baseline in (("probe: self-taught encoder", "probe: random encoder"),
                                 ("probe: self-taught encoder", "probe: pixels"),
                                 ("fine-tune: self-taught init", "fine-tune: from scratch")):
            rows.append(comparison("self-taught learning (SimCLR NT-Xent)", setting, baseline, method,
                                   merged[baseline][k], merged[method][k], seconds, chance=0.2))
    return rows


# ---------------------------------------------------------------- progressive networks (Rusu et al. 2016)

def _column_class():
    """A reference progressive column (the notebook's exercise 2, written here for the benchmark only)."""
    from torch import nn

    class Lateral(nn.Module):
        def __init__(self, i, o, hidden=16):
            super().__init__()
            self.alpha = nn.Parameter(torch.tensor(0.1))
            self.V = nn.Linear(i, hidden)
            self.U = nn.Linear(hidden, o, bias=False)

        def forward(self, h):
            return self.U(F.relu(self.V(self.alpha * h)))

    class Column(nn.Module):
        def __init__(self, sizes, num_classes, previous=None, adapter_dim=16):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.head = nn.Linear(sizes[-1], num_classes)
            self.previous = previous
            self.laterals = nn.ModuleList()
            if previous is not None:
                outs = list(sizes[2:]) + [num_classes]
                self.laterals = nn.ModuleList(Lateral(a, b, adapter_dim) for a, b in zip(sizes[1:], outs))

        def forward(self, x, return_hiddens=False):
            prev = self.previous(x, return_hiddens=True)[1] if self.previous is not None else None
            h, hiddens = x.flatten(1), []
            for k, layer in enumerate(self.layers):
                a = layer(h)
                if prev is not None and k > 0:
                    a = a + self.laterals[k - 1](prev[k - 1])
                h = F.relu(a)
                hiddens.append(h)
            out = self.head(h)
            if prev is not None:
                out = out + self.laterals[-1](prev[-1])
            return (out, hiddens) if return_hiddens else out

    return Column


def progressive(seeds, sizes) -> list[dict]:
    from tlcourse.lessons import self_taught as st

    t0 = time.perf_counter()
    tasks = st.load_task_pair(sizes["pnn_image_size"], sizes["pnn_b_labels"])
    runs = st.continual_runs(_column_class(), tasks, sizes["pnn_hidden"], sizes["pnn_a_epochs"], sizes["pnn_b_epochs"],
                             seeds, adapter_dim=sizes["pnn_adapter_dim"], ewc_strengths=sizes["pnn_ewc_strengths"])
    seconds = time.perf_counter() - t0
    setting = f"MNIST-5k digits 0-4 then 5-9 ({sizes['pnn_b_labels']} labels/class), MLP columns"
    pick = lambda method, task, i: [r[method][task][i] for r in runs]  # noqa: E731
    half = st.halfway(runs)
    return [
        comparison("progressive networks: task A after learning B", setting, "fine-tune A→B", "progressive columns",
                   pick("fine-tune", "A", -1), pick("progressive", "A", -1), seconds, chance=0.2),
        comparison("progressive networks: task B halfway", setting, "fresh column (no laterals)",
                   "progressive columns", pick("fresh column", "B", half), pick("progressive", "B", half), seconds,
                   chance=0.2),
        comparison("progressive networks: task B at the end", setting, "fresh column (no laterals)",
                   "progressive columns", pick("fresh column", "B", -1), pick("progressive", "B", -1), seconds,
                   chance=0.2),
        *[row for name in st.methods_of(runs) if name.startswith("EWC") for row in (
            comparison("EWC: task A after learning B", setting, "fine-tune A→B", name,
                       pick("fine-tune", "A", -1), pick(name, "A", -1), seconds, chance=0.2),
            comparison("EWC: task B at the end", setting, "fine-tune A→B", name,
                       pick("fine-tune", "B", -1), pick(name, "B", -1), seconds, chance=0.2))],
    ]


EXPERIMENTS = {"self_taught": self_taught, "progressive": progressive}

PUBLISHED = {
    "self_taught": {
        "source": "Chen et al. 2020, 'A Simple Framework for Contrastive Learning of Visual Representations' "
                  "(SimCLR), ImageNet, 1% of the labels, Table 7",
        "baseline": 0.254, "method": 0.483, "method_name": "SimCLR ResNet-50 fine-tuned",
        "differs": "ImageNet with 1% of the labels (about 13 per class), a ResNet-50 pretrained for 1,000 epochs on "
                   "1.28M unlabelled images of the *same* classes, versus the same network trained from scratch; ours "
                   "is a ~15k-parameter CNN pretrained for a few hundred steps on 3,000 images of *other* classes."},
}
