"""Tests for the procedural motion dataset: format, determinism, balance and that motion is the label."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from smile.data.datasets import SyntheticVideoDataset

SMALL = {"num_frames": 8, "img_size": 32}


def _stack(ds: SyntheticVideoDataset) -> tuple[torch.Tensor, torch.Tensor]:
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["video"] for it in items]), torch.stack([it["label"] for it in items])


def test_item_format() -> None:
    ds = SyntheticVideoDataset(num_samples=3, **SMALL)
    item = ds[2]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.uint8
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert item["index"].dtype == torch.int64 and item["index"].item() == 2
    assert item["video"].float().std() > 10  # not a blank clip
    assert SyntheticVideoDataset(num_samples=1)[0]["video"].shape == (3, 16, 224, 224)


def test_class_names_and_count() -> None:
    ds = SyntheticVideoDataset(num_samples=4)
    assert ds.num_classes == 8
    assert ds.class_names[:3] == ["right-slow", "right-fast", "down-slow"]
    assert ds.class_names[-1] == "up-fast"
    assert SyntheticVideoDataset(num_directions=8, num_speeds=1).class_names[1] == "down-right"


def test_deterministic_across_instances_and_call_order() -> None:
    a = SyntheticVideoDataset(num_samples=6, seed=3, **SMALL)
    b = SyntheticVideoDataset(num_samples=6, seed=3, **SMALL)
    first = [a[i]["video"] for i in range(6)]
    second = [b[i]["video"] for i in reversed(range(6))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    # a clip does not depend on the dataset length
    assert torch.equal(SyntheticVideoDataset(num_samples=100, seed=3, **SMALL)[4]["video"], first[4])


def test_index_seed_and_split_change_the_clip() -> None:
    train = SyntheticVideoDataset(num_samples=4, **SMALL)
    val = SyntheticVideoDataset(num_samples=4, split="val", **SMALL)
    other_seed = SyntheticVideoDataset(num_samples=4, seed=1, **SMALL)
    assert not torch.equal(train[0]["video"], train[1]["video"])
    assert not torch.equal(train[0]["video"], val[0]["video"])
    assert not torch.equal(train[0]["video"], other_seed[0]["video"])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_samples": 0}, "num_samples"),
        ({"num_frames": 1}, "num_frames"),
        ({"img_size": 8}, "img_size"),
        ({"split": "dev"}, "split"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SyntheticVideoDataset(**kwargs)


def test_index_out_of_range() -> None:
    ds = SyntheticVideoDataset(num_samples=5, **SMALL)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(IndexError):
        ds[-6]
    assert torch.equal(ds[-1]["video"], ds[4]["video"])


def test_labels_balanced_and_consistent() -> None:
    ds = SyntheticVideoDataset(num_samples=400, **SMALL)
    labels = np.array([ds.label_of(i) for i in range(400)])
    assert np.bincount(labels, minlength=8).tolist() == [50] * 8  # stratified blocks
    for i in range(0, 400, 37):
        info = ds.describe(i)
        assert ds[i]["label"].item() == labels[i] == info["label"]
        assert info["label"] == info["direction_index"] * 2 + info["speed_index"]
        assert len(info["shapes"]) == 2


def _circular_centroid(mask: torch.Tensor) -> torch.Tensor:
    """Centroid ``[..., 2]`` (x, y) in pixels of weights ``[..., H, W]`` on a torus (shapes wrap)."""
    size = mask.shape[-1]
    phase = torch.exp(2j * math.pi * torch.arange(size) / size)
    zx = (mask.sum(-2).to(phase.dtype) * phase).sum(-1)
    zy = (mask.sum(-1).to(phase.dtype) * phase).sum(-1)
    return torch.stack([zx.angle(), zy.angle()], -1) * size / (2 * math.pi)


def _wrap(delta: torch.Tensor, size: int) -> torch.Tensor:
    return (delta + size / 2) % size - size / 2


def test_shape_motion_matches_label() -> None:
    ds = SyntheticVideoDataset(num_samples=24, num_frames=8, img_size=64, num_shapes=3)
    speeds: dict[int, list[float]] = {0: [], 1: []}
    for i in range(len(ds)):
        _, masks = ds.render(i, return_masks=True)  # [S, T, H, W]
        step = _wrap(_circular_centroid(masks).diff(dim=1), 64).mean(1)  # [S, 2] px per frame
        info = ds.describe(i)
        angle = torch.atan2(step[:, 1], step[:, 0])
        error = torch.rad2deg(_wrap(angle - math.radians(info["angle_deg"]), 2 * math.pi))
        assert error.abs().max() < 18.0, (i, error)  # jitter is ±15°
        speeds[info["speed_index"]] += step.norm(dim=-1).tolist()
    slow, fast = np.mean(speeds[0]), np.mean(speeds[1])
    assert fast > 2.0 * slow
    assert abs(slow - 0.02 * 64) < 0.15 and abs(fast - 0.05 * 64) < 0.3


def _motion_features(video: torch.Tensor, lag: int = 3) -> torch.Tensor:
    """Displacement per frame ``[N, 2]`` from pixels only: peak of the cross-correlation between
    frame differences ``lag`` steps apart (circular, because shapes wrap around)."""
    diff = video.float().diff(dim=2).abs().sum(1)  # [N, T-1, H, W]
    diff = diff - diff.mean((-2, -1), keepdim=True)
    spec = torch.fft.fft2(diff)
    corr = torch.fft.ifft2(spec[:, :-lag].conj() * spec[:, lag:]).real.sum(1)  # [N, H, W]
    size = video.shape[-1]
    peak = corr.flatten(1).argmax(1)
    dy, dx = peak // size, peak % size
    return _wrap(torch.stack([dx, dy], -1).float(), size) / lag


def _appearance_features(video: torch.Tensor) -> torch.Tensor:
    """One frame, pooled to 8x8 colour: everything a single frame shows at low resolution."""
    frame = video[:, :, video.shape[2] // 2].float()
    return torch.nn.functional.adaptive_avg_pool2d(frame, 8).flatten(1)


def _nearest_mean_accuracy(
    x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, num_classes: int
) -> float:
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    centres = torch.stack([x_train[y_train == c].mean(0) for c in range(num_classes)])
    pred = torch.cdist(x_val, centres).argmin(1)
    return (pred == y_val).float().mean().item()


def test_motion_is_learnable_but_appearance_is_not() -> None:
    train = SyntheticVideoDataset(num_samples=320, split="train", **SMALL)
    val = SyntheticVideoDataset(num_samples=160, split="val", **SMALL)
    (v_train, y_train), (v_val, y_val) = _stack(train), _stack(val)
    chance = 1.0 / train.num_classes
    motion = _nearest_mean_accuracy(_motion_features(v_train), y_train, _motion_features(v_val), y_val, 8)
    look = _nearest_mean_accuracy(_appearance_features(v_train), y_train, _appearance_features(v_val), y_val, 8)
    assert motion > 4.0 * chance, motion
    assert look < 1.6 * chance, look


def test_dataloader_workers_match_single_process() -> None:
    ds = SyntheticVideoDataset(num_samples=8, **SMALL)
    single = next(iter(DataLoader(ds, batch_size=8, num_workers=0)))
    multi = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert torch.equal(single["video"][:4], multi["video"])
    assert torch.equal(single["label"][:4], multi["label"])
    assert torch.equal(single["index"][:4], torch.arange(4))


# -- the pan scene (the demo's data) ---------------------------------------------------------------
PAN = {"num_frames": 8, "img_size": 32, "scene": "pan"}


def _frame_shift(video: torch.Tensor, max_shift: int = 4) -> torch.Tensor:
    """Integer (dx, dy) per frame that best maps frame t onto frame t+1, averaged over the clip.

    A camera moving right by v shows content moving left: frame[t+1](x) = frame[t](x + v).
    """
    v = video.float()
    T, S = v.shape[1], v.shape[-1]
    m = max_shift
    best = []
    for t in range(T - 1):
        a, b = v[:, t], v[:, t + 1]
        errs = {}
        for dy in range(-m, m + 1):
            for dx in range(-m, m + 1):
                crop_b = b[:, m : S - m, m : S - m]
                crop_a = a[:, m + dy : S - m + dy, m + dx : S - m + dx]
                errs[(dx, dy)] = (crop_a - crop_b).pow(2).mean().item()
        best.append(min(errs, key=errs.get))
    return torch.tensor(best, dtype=torch.float32).mean(0)  # [2] px per frame


def test_pan_scene_format_and_determinism() -> None:
    ds = SyntheticVideoDataset(num_samples=8, **PAN)
    item = ds[5]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.uint8
    assert item["video"].float().std() > 20  # textured, not flat
    assert torch.equal(item["video"], SyntheticVideoDataset(num_samples=8, **PAN)[5]["video"])
    assert not torch.equal(item["video"], SyntheticVideoDataset(num_samples=8, **{**PAN, "seed": 1})[5]["video"])
    assert ds.describe(5)["shapes"] == [] and ds.describe(5)["pan"]["grain"] == 2
    with pytest.raises(ValueError, match="scene"):
        SyntheticVideoDataset(scene="orbit")
    with pytest.raises(ValueError, match="return_masks"):
        ds.render(0, return_masks=True)


def test_pan_motion_matches_label() -> None:
    ds = SyntheticVideoDataset(num_samples=16, **PAN)
    for i in range(len(ds)):
        info = ds.describe(i)
        shift = _frame_shift(ds[i]["video"])
        velocity = torch.tensor(info["pan"]["velocity"], dtype=torch.float32)
        assert (shift - velocity).abs().max() < 0.6, (i, shift, velocity)
        assert abs(velocity.norm().item() - (1.0, 2.0)[info["speed_index"]]) < 1e-6  # 1/32 and 2/32 of 32 px
