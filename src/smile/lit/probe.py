"""Frozen-encoder evaluation: feature extraction (cached), linear probe and kNN.

Low-shot subsets live in :mod:`smile.data.subsets`.

Features are extracted once per (encoder, dataset) and kept in memory or on disk, so sweeping the
probe's lr / weight decay costs seconds. The probe itself is a plain torch loop on the cached
features (no augmentation), as MAE-style linear probing does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(
    encoder: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu", cache: str | Path | None = None
) -> tuple[Tensor, Tensor]:
    """Mean-pooled encoder tokens ``[N, D]`` and labels ``[N]`` of every clip in ``batches``.

    Args:
        encoder: A ``VideoViT`` (``forward_features(video) -> [B, N, D]``), run in eval mode.
        batches: Dicts with a normalised float ``video [B, 3, T, H, W]`` and ``label [B]``.
        device: Where to run the encoder.
        cache: Optional ``.pt`` file: loaded if it exists, written otherwise.
    """
    if cache is not None and Path(cache).is_file():
        saved = torch.load(cache, weights_only=True)
        return saved["features"], saved["labels"]
    was_training = encoder.training
    encoder.eval().to(device)
    forward_features = cast(Callable[[Tensor], Tensor], encoder.forward_features)  # a VideoViT method
    feats, labels = [], []
    for batch in batches:
        tokens = forward_features(batch["video"].to(device))  # [B, N, D]
        feats.append(tokens.mean(1).float().cpu())  # [B, D]
        labels.append(batch["label"].cpu())
    encoder.train(was_training)
    out = torch.cat(feats), torch.cat(labels)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"features": out[0], "labels": out[1]}, cache)
    return out


def linear_probe(
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    num_classes: int,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batchnorm: bool = True,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """Train a linear classifier on frozen features; top-1 accuracy on ``test``.

    ``batchnorm`` puts a BatchNorm without affine parameters before the linear layer (MAE's
    linear-probe recipe), which makes the lr insensitive to the feature scale.
    """
    gen = torch.Generator().manual_seed(seed)
    x, y = train
    dim = x.shape[1]
    head = nn.Sequential(nn.BatchNorm1d(dim, affine=False) if batchnorm else nn.Identity(), nn.Linear(dim, num_classes))
    torch.manual_seed(seed)
    linear = head[1]
    assert isinstance(linear, nn.Linear)
    nn.init.trunc_normal_(linear.weight, std=0.01)
    nn.init.zeros_(linear.bias)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, -(-len(x) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    head.eval()
    with torch.no_grad():
        train_acc = (head(x).argmax(1) == y).float().mean().item()
        test_acc = (head(test[0]).argmax(1) == test[1]).float().mean().item()
    return {"train_acc1": train_acc, "test_acc1": test_acc}


def knn_classify(
    train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], num_classes: int, k: int = 20, temperature: float = 0.07
) -> dict[str, float]:
    """Weighted cosine kNN (DINO's protocol): top-1 accuracy of ``test`` against ``train``."""
    bank = F.normalize(train[0], dim=1)
    query = F.normalize(test[0], dim=1)
    sims, idx = (query @ bank.T).topk(min(k, len(bank)), dim=1)  # [Q, k]
    votes = torch.zeros(len(query), num_classes).scatter_add_(1, train[1][idx], (sims / temperature).exp())
    return {"test_acc1": (votes.argmax(1) == test[1]).float().mean().item()}
