"""Tests for the synthetic scenes: appearance never depends on the label, masks match the frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smile.data.datasets.scenes import render_scene, sample_scene, speed_levels, to_uint8


def _draw(scene: str, angle: float, speed: float) -> dict:
    return sample_scene(np.random.default_rng(7), scene, 32, 8, 2, angle, speed)


def test_shapes_appearance_is_label_free() -> None:
    """Two labels with the same generator: identical shapes and background, only the velocity differs."""
    a, b = _draw("shapes", 0.0, 1.0), _draw("shapes", math.pi / 2, 2.0)
    assert a["pan"] is None and len(a["shapes"]) == 2
    for key in ("base", "tint", "wavelength", "phase", "drift"):
        np.testing.assert_array_equal(a["background"][key], b["background"][key])
    for sa, sb in zip(a["shapes"], b["shapes"], strict=True):
        assert sa["kind"] == sb["kind"] and sa["radius"] == sb["radius"]
        np.testing.assert_array_equal(sa["start"], sb["start"])
        assert sa["velocity"][0] > 0.8 and abs(sa["velocity"][1]) < 0.3  # right, ~1 px/frame
        assert sb["velocity"][1] > 1.6 and abs(sb["velocity"][0]) < 0.6  # down, ~2 px/frame


def test_pan_appearance_is_label_free() -> None:
    a, b = _draw("pan", 0.0, 1.0), _draw("pan", math.pi, 2.0)
    assert a["background"] is None and a["shapes"] == []
    np.testing.assert_array_equal(a["pan"]["noise"], b["pan"]["noise"])
    assert a["pan"]["velocity"][0] > 0.9 and b["pan"]["velocity"][0] < -1.8


def test_render_fills_masks_where_shapes_are() -> None:
    params = _draw("shapes", 0.0, 1.0)
    masks = np.zeros((2, 8, 32, 32), np.float32)
    frames = render_scene(params, 8, 32, masks)
    assert frames.shape == (3, 8, 32, 32) and frames.dtype == np.float32
    assert masks.max() == pytest.approx(1.0) and masks.min() == 0.0
    plain = render_scene(params, 8, 32)
    np.testing.assert_array_equal(frames, plain)  # masks only observe
    video = to_uint8(plain.copy())
    assert video.dtype == torch.uint8 and video.shape == (3, 8, 32, 32)
    assert (video.float() / 255 - torch.from_numpy(plain)).abs().max() <= 0.5 / 255 + 1e-6  # rounded, not cut


def test_speed_levels_are_geometric() -> None:
    np.testing.assert_allclose(speed_levels(2), [0.02, 0.05])
    np.testing.assert_allclose(speed_levels(2, "pan"), [1 / 32, 2 / 32])
    np.testing.assert_allclose(speed_levels(1), [math.sqrt(0.02 * 0.05)])
    levels = speed_levels(4)
    np.testing.assert_allclose(levels[1:] / levels[:-1], (0.05 / 0.02) ** (1 / 3))
