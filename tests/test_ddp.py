"""``fit`` under ``torchrun``: two CPU processes (gloo) on loopback keep one set of weights."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = pytest.mark.ddp

SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from tlcourse.device import seed_everything
    from tlcourse.train import fit

    out = sys.argv[1]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    class Blobs(Dataset):
        """Two Gaussian blobs; records which indices this rank was given."""
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            self.x = torch.cat([torch.randn(32, 4, generator=g) + 2, torch.randn(32, 4, generator=g) - 2])
            self.y = torch.cat([torch.zeros(32), torch.ones(32)]).long()
            self.seen = []
        def __len__(self):
            return len(self.y)
        def __getitem__(self, i):
            self.seen.append(int(i))
            return self.x[i], self.y[i]

    # each rank starts from different weights: DDP must broadcast rank 0's
    seed_everything(100 + rank)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    seed_everything(0)  # the same seed everywhere for the sampler's shuffle
    ds = Blobs()
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    hist = fit(model, loader, epochs=2, lr=1e-2, device="cpu", progress=False)
    torch.save({"state": model.state_dict(), "init": init, "seen": ds.seen,
                "train_loss": hist["train_loss"], "wrapped": type(model).__name__},
               os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
''')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fit_under_torchrun_keeps_ranks_in_sync(tmp_path):
    torchrun = pathlib.Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this python")
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    repo = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in [str(repo), os.environ.get("PYTHONPATH", "")] if p))
    cmd = [str(torchrun), "--nproc_per_node=2", "--nnodes=1", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    # the ranks really started apart ...
    assert any(not torch.equal(r0["init"][k], r1["init"][k]) for k in r0["init"])
    # ... and finished with identical weights, which training changed
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert any(not torch.equal(r0["state"][k], r0["init"][k]) for k in r0["state"])
    assert r0["wrapped"] == "Sequential"  # fit leaves the caller's module, not the DDP wrapper
    # each epoch, the two ranks got disjoint halves of the data (a DistributedSampler)
    n = 64
    for epoch in range(2):
        a = r0["seen"][epoch * n // 2:(epoch + 1) * n // 2]
        b = r1["seen"][epoch * n // 2:(epoch + 1) * n // 2]
        assert len(a) == len(b) == n // 2
        assert sorted(a + b) == list(range(n)), epoch
    assert len(r0["seen"]) == len(r1["seen"]) == n  # and nothing more
    assert len(r0["train_loss"]) == 2
