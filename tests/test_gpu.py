"""CUDA paths of the training utilities. Skipped without a GPU; run them on one with `pytest -m gpu`."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.device import amp_dtype, make_grad_scaler, pick_device, seed_everything
from tlcourse.train import evaluate, fit, make_loader

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _blobs(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 16, generator=g) * 3
    y = torch.arange(4).repeat_interleave(n // 4)
    return TensorDataset(centres[y] + torch.randn(n, 16, generator=g), y)


def test_pick_device_prefers_cuda_and_amp_dtype_matches_hardware():
    dev = pick_device()
    assert dev.type == "cuda"
    want = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert amp_dtype(dev) == want
    assert (make_grad_scaler(dev) is None) == (want == torch.bfloat16)


def test_fit_with_amp_on_cuda_learns_and_keeps_fp32_weights():
    seed_everything(0)
    ds = _blobs()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    loader = make_loader(ds, batch_size=64, shuffle=True, device=torch.device("cuda"))
    assert loader.pin_memory
    hist = fit(model, loader, DataLoader(ds, batch_size=128), epochs=5, lr=1e-2, device="cuda", progress=False)
    assert hist["val_acc"][-1] > 0.9
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())


def test_cpu_and_gpu_agree_on_a_graded_check():
    from tlcourse.checks import feature_extraction as fe

    def extract(backbone, loader):
        backbone.eval().cuda()
        feats, labels = [], []
        with torch.no_grad():
            for x, y in loader:
                feats.append(backbone(x.cuda()).cpu())
                labels.append(y)
        return torch.cat(feats), torch.cat(labels)

    assert fe.q2.verdict(extract).correct


def test_evaluate_on_cuda_matches_cpu():
    seed_everything(1)
    ds = _blobs(256, seed=1)
    model = nn.Linear(16, 4)
    cpu = evaluate(model, DataLoader(ds, batch_size=64), device=torch.device("cpu"))
    gpu = evaluate(model.cuda(), DataLoader(ds, batch_size=64), device=torch.device("cuda"))
    assert abs(cpu["acc"] - gpu["acc"]) < 0.02 and abs(cpu["loss"] - gpu["loss"]) < 0.05
