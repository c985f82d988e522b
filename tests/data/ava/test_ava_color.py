"""The reference's HSV colour jitter (smile.data.ava.color): exact colours, the draws' bounds, the config check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from smile.data.ava.color import check_color_jitter, draw_hsv_shifts, hsv_jitter

PRIMARIES_AND_GREYS = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0], [128, 128, 128], [255, 255, 255]]


def _px(rgb: list[int], hue_s: int = 0, sat_s: int = 0, val_s: int = 0) -> list[int]:
    """One pixel through the jitter, as a [3, 1, 1] image."""
    return hsv_jitter(torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1), hue_s, sat_s, val_s).flatten().tolist()


def test_zero_shifts_are_the_identity():
    clip = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(hsv_jitter(clip, 0, 0, 0), clip)  # float arithmetic: exact, not just within a level
    levels = torch.arange(0, 256, 5, dtype=torch.uint8)  # a 52^3 lattice of the colour cube, 255 included
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)  # [3, 52^3, 1]
    assert torch.equal(hsv_jitter(cube, 0, 0, 0), cube)
    assert [_px(c) for c in PRIMARIES_AND_GREYS] == PRIMARIES_AND_GREYS


def test_hue_shifts_in_half_degrees():
    assert _px([255, 0, 0], hue_s=10) == [255, 85, 0]  # 0 + 20 degrees: G = 255 (1 - 40/60)
    assert _px([0, 255, 0], hue_s=-10) == [85, 255, 0]  # 120 - 20 = 100 degrees: R = 255 (120 - 100) / 60
    assert _px([0, 0, 255], hue_s=10) == [85, 0, 255]  # 240 + 20 = 260 degrees
    assert _px([255, 0, 0], hue_s=30) == [255, 255, 0]  # + 60 degrees: yellow
    assert _px([128, 128, 128], hue_s=10) == [128, 128, 128]  # greys have no hue to turn


def test_hue_wraps_modulo_360_degrees():
    assert _px([255, 0, 0], hue_s=-10) == [255, 0, 85]  # -20 -> 340 degrees
    assert _px([255, 0, 0], hue_s=90) == [0, 255, 255]  # 180 degrees: cyan
    assert _px([255, 0, 0], hue_s=180) == [255, 0, 0]  # a full turn (OpenCV's H is modulo 180)
    assert _px([0, 255, 0], hue_s=170) == _px([0, 255, 0], hue_s=-10) == [85, 255, 0]


def test_saturation_and_value_shifts_on_0_255_and_clipped():
    assert _px([255, 255, 255], val_s=-26) == [229, 229, 229]  # V = 229 / 255
    assert _px([128, 128, 128], sat_s=26) == [128, 115, 115]  # hue 0, min = 128 (1 - 26 / 255) = 114.95
    assert _px([255, 255, 255], val_s=26) == [255, 255, 255]  # V clipped at 1
    assert _px([128, 128, 128], sat_s=-26) == [128, 128, 128]  # S clipped at 0
    assert _px([128, 128, 128], sat_s=255) == [128, 0, 0]  # S = 1 at hue 0
    assert _px([0, 0, 0], sat_s=26, val_s=26) == [26, 23, 23]  # black gains value: 26 (1 - 26 / 255) = 23.35
    assert _px([200, 100, 50], sat_s=-26, val_s=-26) == [
        174,
        99,
        61,
    ]  # hue 20, S 0.75 -> 0.648, V -> 174: G = 174 (1 - 0.648 * 2 / 3) = 98.8


def test_the_channel_axis_and_every_frame_get_the_same_shift():
    frames = torch.tensor([[255, 0, 0], [0, 255, 0], [200, 100, 50]], dtype=torch.uint8)  # [T, 3]: T flat colours
    clip = frames.T[:, :, None, None].expand(3, 3, 2, 5).contiguous()  # [3, T, H, W], the dataset's layout
    out = hsv_jitter(clip, 10, -26, -26, dim=0)
    assert out.shape == (3, 3, 2, 5) and out.dtype == torch.uint8
    expected = [_px(c.tolist(), 10, -26, -26) for c in frames]
    assert (
        out[:, :, 0, 0].T.tolist() == expected == [[229, 92, 23], [23, 229, 92], [174, 136, 61]]
    )  # + 20 degrees, S - 0.102
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))  # flat frames stay flat
    assert torch.equal(hsv_jitter(clip.permute(1, 0, 2, 3), 10, -26, -26), out.permute(1, 0, 2, 3))  # dim=-3


def test_bad_clips_are_named():
    with pytest.raises(ValueError, match="uint8 RGB with 3 channels on axis -3, got torch.float32"):
        hsv_jitter(torch.zeros(3, 2, 2), 0, 0, 0)
    with pytest.raises(ValueError, match="3 channels on axis 0, got torch.uint8 \\(4, 2, 2\\)"):
        hsv_jitter(torch.zeros(4, 2, 2, dtype=torch.uint8), 0, 0, 0, dim=0)


def test_draws_stay_within_the_reference_bounds_and_reach_both_ends():
    rng = np.random.default_rng(0)
    draws = np.array([draw_hsv_shifts(rng, 20, 0.1, 0.1) for _ in range(4000)])  # [4000, 3]
    assert draws.min(axis=0).tolist() == [-10, -26, -26] and draws.max(axis=0).tolist() == [10, 26, 26]
    assert [len(np.unique(draws[:, c])) for c in range(3)] == [21, 53, 53]  # every integer in the bounds
    again = np.random.default_rng(0)  # one integers() call per clip: H, S, V
    assert (
        draw_hsv_shifts(again, 20, 0.1, 0.1)
        == tuple(draws[0])
        == tuple(np.random.default_rng(0).integers([-10, -26, -26], [10, 26, 26], endpoint=True).tolist())
    )
    assert draw_hsv_shifts(rng, 0, 0, 0) == (0, 0, 0)
    assert {draw_hsv_shifts(rng, 3, 0, 0)[0] for _ in range(200)} == {-2, -1, 0, 1, 2}  # round(1.5) = 2


def test_color_jitter_config_check():
    assert check_color_jitter(None) is None
    assert check_color_jitter(OmegaConf.create([20, 0.1, 0.1])) == (20.0, 0.1, 0.1)
    assert check_color_jitter((0, 0, 0)) == (0.0, 0.0, 0.0)
    for bad in ([20, 0.1], [20, -0.1, 0.1], "abc", 5, [float("nan"), 0, 0], ["x", 0, 0]):
        with pytest.raises(ValueError, match="data.train_dataset.color_jitter=.* three non-negative numbers"):
            check_color_jitter(bad)  # type: ignore[arg-type]
