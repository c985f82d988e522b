"""Synthetic trajectories: shapes, determinism, key frames, interpolation and the reference's statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from smile.motion.keyframes import random_walk
from smile.motion.trajectories import (
    TrajectoryConfig,
    _gaussian_centres,
    _unit_paths,
    gaussian_smoothing_matrix,
    interpolate_key_frames,
    sample_key_frames,
    sample_trajectories,
)


def _sample(batch=4, frames=16, size=224, cfg=None, seed=0):
    return sample_trajectories(batch, frames, size, cfg, torch.Generator().manual_seed(seed))


def _centres(boxes):
    b = boxes.double()
    return (b[..., :2] + b[..., 2:]) / 2  # [B, K, T, 2]


def _stats(boxes):
    """Mean per-frame centre step (L2), mean centre span, mean geometric-mean box side."""
    c = _centres(boxes)
    step = (c[:, :, 1:] - c[:, :, :-1]).norm(dim=-1).mean().item()
    ranges = c.amax(2) - c.amin(2)  # [B, K, 2]
    wh = boxes[..., 2:].double() - boxes[..., :2].double()
    side = (wh[..., 0] * wh[..., 1]).sqrt().mean().item()
    return step, ranges.mean().item(), ranges.amax(-1).mean().item(), side


# --------------------------------------------------------------------------------------- API


@pytest.mark.parametrize("motion", ["gaussian", "linear"])
def test_shapes_dtypes_and_integer_values(motion):
    boxes, angles = _sample(3, 16, 224, {"motion_type": motion, "num_objects": 3})
    assert boxes.shape == (3, 3, 16, 4) and angles.shape == (3, 3, 16)
    assert boxes.dtype == angles.dtype == torch.float32
    assert boxes.device.type == angles.device.type == "cpu"
    assert torch.equal(boxes, boxes.round()) and torch.equal(angles, angles.trunc())
    assert (boxes[..., 2:] > boxes[..., :2]).all()


def test_non_square_and_other_lengths():
    boxes, angles = _sample(2, 5, (48, 96))
    assert boxes.shape == (2, 2, 5, 4) and angles.shape == (2, 2, 5)
    assert _sample(1, 2, 32)[0].shape == (1, 2, 2, 4)


def test_determinism():
    a, b = _sample(seed=7), _sample(seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = _sample(seed=8)
    assert not torch.equal(a[0], c[0])
    torch.manual_seed(3)
    g1 = sample_trajectories(2, 16, 224)
    torch.manual_seed(3)
    assert torch.equal(g1[0], sample_trajectories(2, 16, 224)[0])


# -------------------------------------------------------------------------------- key frames


def test_key_frame_sampler_matches_reference_ticks():
    keys = sample_key_frames(np.random.default_rng(0), 20000, 16, (0.5, 0.3, 0.2))  # [n, 3]
    assert (keys[:, 0] == 0).all() and (keys[:, -1] == 15).all()
    assert (np.diff(keys, axis=1) >= 0).all()
    interior = [sorted(set(row) - {0, 15}) for row in keys.tolist()]
    k = np.array([len(i) for i in interior])
    np.testing.assert_allclose(np.bincount(k, minlength=3) / k.size, (0.5, 0.3, 0.2), atol=0.015)
    one = {t for i in interior if len(i) == 1 for t in i}
    two = [i for i in interior if len(i) == 2]
    assert one == {6, 7, 8, 9}
    assert {i[0] for i in two} == {4, 5} and {i[1] for i in two} == {9, 10}


def test_key_frames_short_clips_stay_in_range():
    for frames in (2, 3, 4, 8, 32):
        keys = sample_key_frames(np.random.default_rng(1), 500, frames, (0.5, 0.3, 0.2))
        assert keys.min() == 0 and keys.max() == frames - 1 and (keys[:, -1] == frames - 1).all()


@pytest.mark.parametrize(
    "mode, expected",
    [(0, [0, 2, 4, 6, 8]), (1, [0, 0.5, 2, 4.5, 8]), (2, [0, 3.5, 6, 7.5, 8])],
)
def test_interpolation_modes(mode, expected):
    keys = np.array([[0, 4, 6]])
    values = np.array([[[0.0], [8.0], [2.0]]])
    modes = np.array([[mode, 0, 0]])
    out = interpolate_key_frames(keys, values, modes, 7)[0, :, 0]
    np.testing.assert_allclose(out, [*expected, 5.0, 2.0])


def test_interpolation_ignores_repeated_keys():
    keys = np.array([[0, 0, 3, 3]])
    values = np.array([[[1.0], [1.0], [4.0], [4.0]]])
    out = interpolate_key_frames(keys, values, np.zeros((1, 4), dtype=int), 4)[0, :, 0]
    np.testing.assert_allclose(out, [1, 2, 3, 4])


# ------------------------------------------------------------------------------ gaussian path


def test_smoothing_matches_scipy_reflect():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for points, sigma in ((48, 8.0), (10, 8.0), (30, 1.5)):
        x = rng.random((3, points))
        expected = ndimage.gaussian_filter1d(x, sigma, axis=-1, mode="reflect")
        np.testing.assert_allclose(x @ gaussian_smoothing_matrix(points, sigma).T, expected, atol=1e-12)


def test_gaussian_paths_have_equal_x_and_y_extent():
    cfg = TrajectoryConfig()
    unit = _unit_paths(np.random.default_rng(0), 50, cfg)  # [n, 48, 2]
    np.testing.assert_allclose(unit.min(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(unit.max(1), 1.0, atol=1e-12)
    size_xy = np.array([224.0, 224.0])
    centres = _gaussian_centres(np.random.default_rng(1), cfg, 200, 48, 1.0, size_xy)  # every path point
    ranges = centres.max(1) - centres.min(1)  # [n, 2]
    assert np.array_equal(ranges[:, 0], ranges[:, 1])
    assert ranges.min() >= 40 and ranges.max() <= 179
    assert centres.min() >= 0 and centres.max() <= 223


def test_gaussian_statistics_match_reference():
    """SPEC §2.4 [M] over 300 clips: step ≈ 16 px, centre span ≈ 108 px, box side ≈ 72 px.

    Span = mean over objects of the x- and y-ranges of the 16 centres (max(x, y) gives +0.3 px);
    the path extent is ``s ~ randint(40, 180)``, mean 109.5, so ≈ 108-110 either way.
    """
    boxes, _ = _sample(300, 16, 224, seed=0)
    step, span, span_max, side = _stats(boxes)
    assert 13 < step < 19
    assert 100 < span < 118 and 0 <= span_max - span < 2
    assert 64 < side < 80


def test_frame_size_scales_pixels():
    big = _stats(_sample(300, 16, 224, seed=0)[0])
    small = _stats(_sample(300, 16, 112, seed=0)[0])
    for b, s in zip(big, small, strict=True):
        assert 0.4 < s / b < 0.6
    assert np.isclose(small[1], big[1] / 2, rtol=0.08)


# -------------------------------------------------------------------------------- linear path


def test_linear_motion_stays_inside_and_is_bounded():
    cfg = TrajectoryConfig(motion_type="linear")
    boxes, _ = _sample(300, 16, 224, cfg, seed=2)
    first = boxes[:, :, 0]
    assert first.min() >= 0 and first.max() <= 223
    half0 = (first[..., 2:] - first[..., :2]) / 2  # [B, K, 2], box of frame 0
    c = _centres(boxes)  # [B, K, T, 2]
    assert (c >= half0[:, :, None] - 1).all() and (c <= 223 - half0[:, :, None] + 1).all()
    step = (c[:, :, 1:] - c[:, :, :-1]).abs()
    # a key segment moves at most 12 px/frame on average; accelerate/decelerate peak at twice that
    assert step.max() <= 2 * cfg.loc_velocity + 1
    assert step.mean() > 1
    total = (c[:, :, -1] - c[:, :, 0]).abs()
    assert total.max() <= cfg.loc_velocity * 15 + 1


# ------------------------------------------------------------------------------------ rotation


def test_rotation_walk():
    boxes, angles = _sample(500, 16, 224, seed=3)
    assert (angles[..., 0] == 0).all()
    assert angles.abs().max() <= 6 * 15
    assert (angles[..., 1:] - angles[..., :-1]).abs().max() <= 2 * 6 + 1  # per frame, as above
    assert angles.abs().amax(-1).mean() > 5
    sizes = boxes[..., 2:] - boxes[..., :2]  # log-size walk: at most x exp(0.025 * 15) ≈ 1.455
    first, last = sizes[..., 0, :], sizes[..., -1, :]  # +-2: both are differences of rounded values
    assert (last <= first * 1.455 + 2).all() and (last >= first / 1.455 - 2).all()
    assert (last != first).float().mean() > 0.5


def test_walk_steps_bounded_by_velocity_times_gap():
    rng = np.random.default_rng(0)
    keys = sample_key_frames(rng, 5000, 16, (0.5, 0.3, 0.2))
    values = random_walk(rng, keys, np.zeros((5000, 2)), np.full((5000, 1), 6.0))  # [n, M, 2]
    gap = np.diff(keys, axis=1)[..., None]
    step = np.abs(np.diff(values, axis=1))
    assert (step <= 6.0 * gap + 1e-9).all() and (step[gap[..., 0] > 0] > 0).all()
    assert (step.max(axis=(0, 2)) > 0.9 * 6.0 * gap.max(axis=(0, 2))).all()  # the full range is used
    low, high = np.full((5000, 2), -5.0), np.full((5000, 2), 5.0)
    clipped = random_walk(rng, keys, np.zeros((5000, 2)), np.full((5000, 1), 6.0), (low, high))
    assert clipped.min() == -5.0 and clipped.max() == 5.0


# -------------------------------------------------------------------------------------- config


def test_config_defaults_and_from_any():
    cfg = TrajectoryConfig.from_any(None)
    assert cfg.num_objects == 2 and cfg.span == (40, 180) and cfg.motion_type == "gaussian"
    assert TrajectoryConfig.from_any(cfg) is cfg
    other = TrajectoryConfig.from_any({"scales": [16, 32], "loc_velocity": 5, "span": [10, 20]})
    assert other.scales == (16.0, 32.0) and other.loc_velocity == 5.0 and other.span == (10, 20)
    omega = OmegaConf.create({"motion_type": "linear", "ratios": [1.0], "key_frame_probs": [1.0]})
    from_omega = TrajectoryConfig.from_any(omega)
    assert from_omega.ratios == (1.0,) and from_omega.key_frame_probs == (1.0,)
    boxes, _ = _sample(2, 6, 64, from_omega)
    wh = boxes[..., 2:] - boxes[..., :2]
    assert boxes.shape == (2, 2, 6, 4) and (wh > 0).all()


@pytest.mark.parametrize(
    "key, value",
    [
        ("motion_type", "circle"),
        ("key_frame_probs", (0.5, 0.3)),
        ("interp_probs", (0.5, 0.5)),
        ("num_objects", 0),
        ("scales", ()),
        ("ratios", (1.0, -1.0)),
        ("span", (50, 40)),
        ("gaussian_sigma", 0.0),
        ("rot_velocity", -1.0),
        ("bogus_key", 1),
    ],
)
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        TrajectoryConfig.from_any({key: value})


def test_bad_call_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        _sample(frames=1)
    with pytest.raises(ValueError, match="frame_size"):
        _sample(size=(32, 32, 3))
    with pytest.raises(ValueError, match="batch_size"):
        _sample(batch=0)
