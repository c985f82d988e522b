"""Cube random erasing (SPEC §7.1.5): one draw per clip, the same boxes in every frame, fresh fills."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smile.data.transforms import ClipRandomErasing, FinetuneTrainTransform

CLIPS = 1200
T, H, W = 4, 16, 16


def erased_region(out: torch.Tensor) -> torch.Tensor:
    """``[T, H, W]`` bool: where a zero clip was overwritten (noise is never exactly 0)."""
    return (out != 0).any(0)


def run_clips(eraser: ClipRandomErasing, n: int = CLIPS, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [eraser(torch.zeros(3, T, H, W), rng) for _ in range(n)]


def test_cube_erases_a_clip_with_probability_reprob_and_the_same_box_in_every_frame():
    outs = run_clips(ClipRandomErasing(prob=0.25, mode="pixel"))
    erased = [o for o in outs if (o != 0).any()]
    # binomial(1200, 0.25): sd = 15; 4 sd = 60 clips
    assert abs(len(erased) - 0.25 * CLIPS) < 4 * math.sqrt(CLIPS * 0.25 * 0.75)
    for out in erased:
        region = erased_region(out)  # [T, H, W]
        assert (region == region[0]).all()  # the same box in every frame
        rows, cols = region[0].nonzero(as_tuple=True)
        top, bottom, left, right = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        assert region[0, top : bottom + 1, left : right + 1].all()  # one filled rectangle
        area = (bottom - top + 1) * (right - left + 1)
        assert 0.02 * H * W - 2 * H <= area <= H * W / 3 + 2 * H  # timm's area range, rounding aside


def test_cube_pixel_noise_is_fresh_per_frame_and_standard_normal():
    outs = [o for o in run_clips(ClipRandomErasing(prob=1.0, mode="pixel"), n=200) if (o != 0).any()]
    assert len(outs) == 200
    values = []
    for out in outs:
        region = erased_region(out)[0]
        box = out[:, :, region]  # [3, T, area]
        assert not torch.equal(box[:, 0], box[:, 1])  # frames differ inside the box
        values.append(box.flatten())
    v = torch.cat(values)
    assert abs(float(v.mean())) < 0.02 and abs(float(v.std()) - 1.0) < 0.02


def test_cube_rand_and_const_fills():
    rand = ClipRandomErasing(prob=1.0, mode="rand")(torch.zeros(3, T, H, W), np.random.default_rng(3))
    region = erased_region(rand)[0]
    box = rand[:, :, region]  # [3, T, area]
    assert (box == box[..., :1]).all()  # one colour per channel and frame
    assert not torch.equal(box[:, 0, 0], box[:, 1, 0])  # redrawn per frame, as the reference's loop
    const = ClipRandomErasing(prob=1.0, mode="const")(torch.ones(3, T, H, W), np.random.default_rng(3))
    zeros = const == 0
    assert zeros.any() and (zeros == zeros[:1, :1]).all()  # the same box, all channels and frames
    assert torch.equal(zeros[0, 0], region)  # same draws as the rand clip: the same box


def test_cube_count_draws_between_one_and_count_boxes():
    eraser = ClipRandomErasing(prob=1.0, mode="const", count=3)
    rng = np.random.default_rng(4)
    counts = [len(eraser.sample_boxes(64, 64, rng)) for _ in range(1000)]
    assert set(counts) == {1, 2, 3}
    for n in (1, 2, 3):
        assert abs(counts.count(n) - 1000 / 3) < 4 * math.sqrt(1000 * 2 / 9)
    # the area budget is split between the boxes: mean box area = mean(U(0.02, 1/3)) * 64 * 64 / n
    boxes = [eraser.sample_boxes(64, 64, np.random.default_rng(s)) for s in range(600)]
    three = [h * w for b in boxes if len(b) == 3 for _, _, h, w in b]
    assert abs(np.mean(three) - (0.02 + 1 / 3) / 2 * 64 * 64 / 3) < 0.1 * 64 * 64 / 3
    out = eraser(torch.ones(3, T, 64, 64), np.random.default_rng(5))
    assert torch.equal(out[:, 0], out[:, -1])  # const fill: every box identical in every frame


def test_per_frame_switch_erases_frames_independently():
    outs = run_clips(ClipRandomErasing(prob=0.25, mode="pixel", cube=False), n=1000)
    frames_erased = np.array([[bool((o[:, t] != 0).any()) for t in range(T)] for o in outs])
    assert abs(frames_erased.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / (1000 * T))
    some = frames_erased.any(1).mean()  # 1 - 0.75^4 = 0.68 of the clips, not 0.25
    assert abs(some - (1 - 0.75**T)) < 0.06


def test_finetune_transform_passes_the_switch_and_rejects_a_bad_mode():
    assert FinetuneTrainTransform(32, aa=None, reprob=0.25).erase.cube is True
    assert FinetuneTrainTransform(32, aa=None, reprob=0.25, erase_cube=False).erase.cube is False
    with pytest.raises(ValueError, match="remode.*'noise'"):
        ClipRandomErasing(prob=0.25, mode="noise")
