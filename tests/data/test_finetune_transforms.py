"""Finetuning transforms (SPEC §7.1): crops, flips, RandAugment per clip, erasing, normalisation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from smile.data.transforms import (
    CenterCropClip,
    ClipRandAugment,
    ClipRandomErasing,
    EvalTransform,
    FinetuneTrainTransform,
    RandomHorizontalFlipClip,
    RandomResizedCropClip,
    ShortSideResize,
    ThreeCrops,
    normalize_clip,
)
from smile.video import IMAGENET_MEAN, IMAGENET_STD


def coords(height: int, width: int, lead: tuple[int, ...] = (1, 1)) -> torch.Tensor:
    """int64 ``[*lead, H, W]`` whose value encodes the pixel: ``1000 * y + x``."""
    grid = 1000 * torch.arange(height)[:, None] + torch.arange(width)[None, :]
    return grid.expand(*lead, height, width).clone()


def textured_frames(num: int, height: int = 40, width: int = 48, seed: int = 0) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` random-looking frames (every op of RandAugment changes them)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (num, height, width, 3), generator=gen, dtype=torch.uint8)


# --- random resized crop and flip -----------------------------------------------------------


def test_rrc_cuts_the_same_box_from_every_frame():
    base = torch.linspace(0, 1, 48 * 64).reshape(48, 64)
    clip = torch.stack([base + t for t in range(6)]).expand(3, 6, 48, 64).contiguous()  # [3, T, H, W]
    rrc = RandomResizedCropClip(32, scale=(0.25, 1.0))
    out = rrc(clip, np.random.default_rng(3))
    assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
    for t in range(6):  # frame t = frame 0 + t everywhere: the same crop and resize for all frames
        torch.testing.assert_close(out[:, t], out[:, 0] + t)
    top, left, h, w = rrc.sample_crop(48, 64, np.random.default_rng(3))
    crop = clip[..., top : top + h, left : left + w]
    torch.testing.assert_close(out, F.interpolate(crop, size=(32, 32), mode="bilinear", align_corners=False))


def test_rrc_box_respects_scale_and_ratio():
    rrc = RandomResizedCropClip(32, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3))
    rng = np.random.default_rng(0)
    for _ in range(300):
        top, left, h, w = rrc.sample_crop(240, 320, rng)
        assert 0 <= top and top + h <= 240 and 0 <= left and left + w <= 320
        assert 0.25 * 0.95 <= h * w / (240 * 320) <= 1.0
        assert 0.74 <= w / h <= 1.35


def test_rrc_fallback_is_the_centred_largest_allowed_box():
    rrc = RandomResizedCropClip(32, scale=(1.0, 1.0), ratio=(1.0, 1.0))  # 55 x 55 never fits 48 x 64
    assert rrc.sample_crop(48, 64, np.random.default_rng(0)) == (0, 8, 48, 48)


def test_rrc_keeps_uint8():
    out = RandomResizedCropClip(16)(torch.full((4, 3, 48, 64), 77, dtype=torch.uint8), np.random.default_rng(0))
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 16, 16) and torch.all(out == 77)


def test_flip():
    clip = coords(4, 6, (3, 2))
    assert torch.equal(RandomHorizontalFlipClip(1.0)(clip, np.random.default_rng(0)), clip.flip(-1))
    assert torch.equal(RandomHorizontalFlipClip(0.0)(clip, np.random.default_rng(0)), clip)
    for seed in range(10):
        flipped = not torch.equal(RandomHorizontalFlipClip(0.5)(clip, np.random.default_rng(seed)), clip)
        assert flipped == (np.random.default_rng(seed).uniform() < 0.5)


# --- evaluation geometry --------------------------------------------------------------------


def test_short_side_resize_sizes():
    assert ShortSideResize(32)(torch.zeros(2, 3, 48, 64, dtype=torch.uint8)).shape == (2, 3, 32, 42)
    assert ShortSideResize(32)(torch.zeros(2, 3, 64, 48)).shape == (2, 3, 42, 32)  # portrait
    assert ShortSideResize(224).output_size(256, 340) == (224, 297)  # int(224 * 340 / 256)
    clip = torch.zeros(2, 3, 32, 40, dtype=torch.uint8)
    assert ShortSideResize(32)(clip) is clip  # already the right short side


def test_short_side_resize_is_plain_bilinear_like_cv2():
    clip = torch.randint(0, 256, (1, 3, 48, 64), dtype=torch.uint8)
    out = ShortSideResize(24)(clip)
    ref = F.interpolate(clip.float(), size=(24, 32), mode="bilinear", align_corners=False, antialias=False)
    assert (out.float() - ref).abs().max() <= 1.0


def test_centre_crop_position():
    out = CenterCropClip(32)(coords(48, 64))
    assert out.shape == (1, 1, 32, 32)
    assert out[0, 0, 0, 0] == 1000 * 8 + 16  # top = (48 - 32) / 2, left = (64 - 32) / 2
    assert CenterCropClip(32)(coords(48, 63))[0, 0, 0, 0] == 1000 * 8 + 16  # round(15.5) = 16 (to even)
    with pytest.raises(ValueError, match="larger"):
        CenterCropClip(50)(coords(48, 64))


def test_three_crops_landscape_portrait_square():
    assert ThreeCrops(32).offsets(48, 64) == [(8, 0), (8, 16), (8, 32)]  # left, centre, right
    assert ThreeCrops(32).offsets(64, 48) == [(0, 8), (16, 8), (32, 8)]  # top, centre, bottom
    assert ThreeCrops(32).offsets(48, 48) == [(0, 8), (8, 8), (16, 8)]  # square: along H (reference)
    assert ThreeCrops(224).offsets(224, 398) == [(0, 0), (0, 87), (0, 174)]  # int(k * 174 / 2)
    assert ThreeCrops(32, 1).offsets(48, 64) == [(8, 16)]
    out = ThreeCrops(32)(coords(48, 64, (3, 2)))
    assert out.shape == (3, 3, 2, 32, 32)
    assert [int(v) for v in out[:, 0, 0, 0, 0]] == [8000, 8016, 8032]
    assert [int(v) for v in out[:, 0, 0, -1, -1]] == [39031, 39047, 39063]


def test_three_crops_after_short_side_resize():
    resized = ShortSideResize(32)(torch.zeros(1, 3, 48, 64))  # -> 32 x 42
    assert ThreeCrops(32).offsets(*resized.shape[-2:]) == [(0, 0), (0, 5), (0, 10)]


# --- RandAugment ----------------------------------------------------------------------------


def test_rand_augment_same_ops_on_every_frame():
    aug = ClipRandAugment("rand-m7-n4-mstd0.5-inc1", img_size=48)
    frame = textured_frames(1)
    same = frame.expand(5, -1, -1, -1).contiguous()
    changed = 0
    for seed in range(8):
        out = aug(same, np.random.default_rng(seed))
        assert out.shape == same.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[t], out[0]) for t in range(5))  # identical frames stay identical
        changed += not torch.equal(out[0], frame[0])
    assert changed >= 6  # 4 ops at p=0.5 each: almost always something happens


def test_rand_augment_transforms_different_frames_consistently():
    aug = ClipRandAugment(img_size=48)
    clip = textured_frames(4, seed=1)
    outs = [aug(clip, np.random.default_rng(seed)) for seed in range(6)]
    for seed, out in enumerate(outs):
        for t in range(4):  # frame t's result does not depend on the other frames: the clip's one op list
            assert torch.equal(out[t], aug(clip[t : t + 1], np.random.default_rng(seed))[0])
    assert len({out.numpy().tobytes() for out in outs}) >= 5  # different clips get different ops


def test_rand_augment_is_seeded_and_leaves_global_rngs_alone():
    aug = ClipRandAugment(img_size=48)
    clip = textured_frames(3, seed=2)
    random.seed(11)
    np.random.seed(11)
    first = aug(clip, np.random.default_rng(7))
    after = (random.random(), np.random.rand())
    random.seed(11)
    np.random.seed(11)
    assert (random.random(), np.random.rand()) == after
    assert torch.equal(first, aug(clip, np.random.default_rng(7)))


# --- random erasing and normalisation -------------------------------------------------------


def test_random_erasing_per_frame_probability_zero_and_one():
    clip = torch.zeros(3, 8, 32, 32)
    assert torch.equal(ClipRandomErasing(prob=0.0, cube=False)(clip.clone(), np.random.default_rng(0)), clip)
    out = ClipRandomErasing(prob=1.0, mode="pixel", cube=False)(clip.clone(), np.random.default_rng(0))
    boxes = set()
    for t in range(8):
        erased = (out[:, t] != 0).any(0)  # [H, W]
        assert erased.any()  # every frame erased
        rows, cols = erased.nonzero(as_tuple=True)
        box = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))
        boxes.add(box)
        assert erased[box[0] : box[1] + 1, box[2] : box[3] + 1].all()  # one filled rectangle
    assert len(boxes) > 1  # independent per frame


@pytest.mark.parametrize("cube", [True, False])
def test_random_erasing_is_seeded_and_keeps_torch_rng(cube):
    torch.manual_seed(5)
    a = ClipRandomErasing(prob=1.0, cube=cube)(torch.zeros(3, 4, 16, 16), np.random.default_rng(1))
    next_draw = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), next_draw)
    assert (a != 0).any()
    assert torch.equal(a, ClipRandomErasing(prob=1.0, cube=cube)(torch.zeros(3, 4, 16, 16), np.random.default_rng(1)))


def test_normalize_clip_values_and_layout():
    clip = torch.zeros(2, 4, 5, 3, dtype=torch.uint8)
    clip[..., 0], clip[..., 1], clip[..., 2] = 0, 128, 255
    clip[1] = 51
    out = normalize_clip(clip)
    assert out.shape == (3, 2, 4, 5) and out.dtype == torch.float32
    for c, v in enumerate((0, 128, 255)):
        assert torch.allclose(out[c, 0], torch.tensor((v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))
        assert torch.allclose(out[c, 1], torch.tensor((0.2 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))


# --- composed transforms --------------------------------------------------------------------


def test_train_transform_shapes_and_flat_frames():
    frames = torch.full((6, 48, 64, 3), 100, dtype=torch.uint8)
    out = FinetuneTrainTransform(32, aa=None, reprob=0.0)(frames, np.random.default_rng(0))
    assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
    expected = (100 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out, expected.view(3, 1, 1, 1).expand_as(out))


def test_train_transform_follows_the_spec_order():
    frames = textured_frames(4, 48, 64, seed=3)
    tf = FinetuneTrainTransform(32, reprob=1.0)
    out = tf(frames, np.random.default_rng(9))
    rng = np.random.default_rng(9)  # RandAugment -> normalise -> crop -> flip -> erase, one stream
    manual = normalize_clip(tf.rand_augment(frames, rng))
    manual = tf.erase(tf.flip(tf.crop(manual, rng), rng).contiguous(), rng)
    torch.testing.assert_close(out, manual, rtol=0, atol=0)
    assert torch.isfinite(out).all() and out.shape == (3, 4, 32, 32)
    assert not torch.equal(out, tf(frames, np.random.default_rng(10)))


def test_train_transform_without_flip_never_flips():
    tf = FinetuneTrainTransform(32, aa=None, flip=False, reprob=0.0)
    assert tf.flip is None
    frames = textured_frames(2, 48, 64)
    out = tf(frames, np.random.default_rng(0))
    crop = tf.crop(normalize_clip(frames), np.random.default_rng(0))
    torch.testing.assert_close(out, crop)


def test_eval_transform_centre_and_three():
    frames = textured_frames(4, 48, 64, seed=4)
    centre = EvalTransform(32, short_side=32, crop="centre")(frames)
    assert centre.shape == (3, 4, 32, 32) and centre.dtype == torch.float32
    resized = ShortSideResize(32)(frames.permute(0, 3, 1, 2))  # [T, 3, 32, 42]
    expected = normalize_clip(CenterCropClip(32)(resized).permute(0, 2, 3, 1))
    torch.testing.assert_close(centre, expected)
    three = EvalTransform(32, short_side=32, crop="three")(frames)
    assert three.shape == (3, 3, 4, 32, 32)
    torch.testing.assert_close(three[0], normalize_clip(resized[..., :, 0:32].permute(0, 2, 3, 1)))
    torch.testing.assert_close(three[2], normalize_clip(resized[..., :, 10:42].permute(0, 2, 3, 1)))
    raw = EvalTransform(32, 32, "three", normalize=False)(frames)
    assert raw.dtype == torch.uint8 and raw.shape == (3, 3, 4, 32, 32)
    with pytest.raises(ValueError, match="short_side"):
        EvalTransform(64, short_side=32)
