"""Pixel targets against hand-computed values, and teacher-feature normalisations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smile.teachers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PixelTarget,
    clip_channel_standardize,
    normalize_features,
    pixel_targets,
    token_layernorm,
)

MEAN = (0.5, 1.0, 2.0)
STD = (2.0, 4.0, 0.5)


def _raw_video() -> torch.Tensor:
    """Raw pixels ``100*c + 16*t + 4*y + x`` of a [1, 3, 2, 4, 4] clip (known by construction)."""
    c, t, y, x = torch.meshgrid(*(torch.arange(n) for n in (3, 2, 4, 4)), indexing="ij")
    return (100 * c + 16 * t + 4 * y + x).float()[None].double()


def _normalised(raw: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, dtype=raw.dtype).reshape(1, 3, 1, 1, 1)
    std = torch.tensor(STD, dtype=raw.dtype).reshape(1, 3, 1, 1, 1)
    return ((raw - mean) / std).float()


def test_pixel_targets_raw_values_and_order() -> None:
    out = pixel_targets(_normalised(_raw_video()), patch_size=2, tubelet_size=2, mean=MEAN, std=STD, normalize=False)
    assert out.shape == (1, 4, 24) and out.dtype == torch.float32  # tokens 1*2*2, dim 2*2*2*3
    # token 1 = (t0, h0, w1); pixel 0 = (pt0, ph0, pw0) -> (t0, y0, x2); channel 1 -> 100 + 2
    assert out[0, 1, 0 * 3 + 1].item() == pytest.approx(102.0, abs=1e-4)
    # pixel 5 = (pt1, ph0, pw1) -> (t1, y0, x3); channel 2 -> 200 + 16 + 3
    assert out[0, 1, 5 * 3 + 2].item() == pytest.approx(219.0, abs=1e-4)
    # token 2 = (t0, h1, w0); pixel 3 = (pt0, ph1, pw1) -> (t0, y3, x1); channel 0 -> 12 + 1
    assert out[0, 2, 3 * 3 + 0].item() == pytest.approx(13.0, abs=1e-4)


def test_pixel_targets_match_explicit_loops() -> None:
    raw = _raw_video()[0]
    out = pixel_targets(_normalised(raw[None]), patch_size=2, tubelet_size=2, mean=MEAN, std=STD, normalize=False)
    for ti in range(1):
        for hi in range(2):
            for wi in range(2):
                token = ti * 4 + hi * 2 + wi
                for pt in range(2):
                    for ph in range(2):
                        for pw in range(2):
                            pixel = pt * 4 + ph * 2 + pw
                            for c in range(3):
                                want = raw[c, ti * 2 + pt, hi * 2 + ph, wi * 2 + pw].item()
                                assert out[0, token, pixel * 3 + c].item() == pytest.approx(want, abs=1e-4)


def test_pixel_targets_normalised_per_cube_per_channel() -> None:
    out = pixel_targets(_normalised(_raw_video()), patch_size=2, tubelet_size=2, mean=MEAN, std=STD)
    # Inside any cube and channel the raw values are offset + 16*pt + 4*ph + pw, i.e. offset +
    # {0, 1, 4, 5, 16, 17, 20, 21}: mean offset + 10.5, squared deviations sum 546, unbiased var 78.
    dev = [16 * pt + 4 * ph + pw - 10.5 for pt in range(2) for ph in range(2) for pw in range(2)]
    want = torch.tensor([d / (math.sqrt(78.0) + 1e-6) for d in dev for _ in range(3)])  # (p c)
    for token in range(4):
        assert torch.allclose(out[0, token], want, atol=1e-5)


def test_pixel_targets_random_clip_against_numpy() -> None:
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, 4, 4, 6, generator=gen)
    out = pixel_targets(video, patch_size=2, tubelet_size=2).numpy()
    raw = (
        video.double().numpy() * np.array(IMAGENET_STD)[:, None, None, None]
        + np.array(IMAGENET_MEAN)[:, None, None, None]
    )
    assert out.shape == (2, 2 * 2 * 3, 24)
    for b in range(2):
        for ti, hi, wi in np.ndindex(2, 2, 3):
            token = ti * 6 + hi * 3 + wi
            cube = raw[b, :, 2 * ti : 2 * ti + 2, 2 * hi : 2 * hi + 2, 2 * wi : 2 * wi + 2].reshape(3, 8)
            cube = (cube - cube.mean(1, keepdims=True)) / (cube.std(1, ddof=1, keepdims=True) + 1e-6)
            np.testing.assert_allclose(out[b, token], cube.T.reshape(-1), atol=1e-4)


def test_pixel_targets_half_input_computes_in_float32() -> None:
    video = torch.randn(1, 3, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    out = pixel_targets(video.bfloat16(), patch_size=2, tubelet_size=2)
    assert out.dtype == torch.float32
    assert torch.allclose(out, pixel_targets(video.bfloat16().float(), patch_size=2, tubelet_size=2))
    with pytest.raises(ValueError, match="divisible"):
        pixel_targets(video, patch_size=3, tubelet_size=2)


def test_clip_channel_standardize() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 50, 8, generator=gen) * 3 + 5
    out = clip_channel_standardize(feats)
    assert torch.allclose(out.mean(1), torch.zeros(2, 8), atol=1e-5)
    assert torch.allclose(out.std(1, unbiased=True), torch.ones(2, 8), atol=1e-5)
    f = feats.double().numpy()
    want = (f - f.mean(1, keepdims=True)) / (f.std(1, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    assert clip_channel_standardize(feats.bfloat16()).dtype == torch.float32
    assert torch.equal(normalize_features(feats, "clip_channel_standardize"), out)


def test_token_layernorm_and_modes() -> None:
    feats = torch.randn(2, 10, 16, generator=torch.Generator().manual_seed(2)) * 4 - 1
    out = token_layernorm(feats)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 10), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(2, 10), atol=1e-4)
    assert torch.equal(normalize_features(feats, "token_layernorm"), out)
    assert torch.equal(normalize_features(feats, "none"), feats)
    with pytest.raises(ValueError, match="unknown"):
        normalize_features(feats, "batchnorm")


def test_pixel_target_module() -> None:
    target = PixelTarget()
    assert target.state_dict() == {}
    assert list(target.parameters()) == []
    assert target.dim == 1536 and IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    small = PixelTarget(patch_size=2, tubelet_size=2, normalize=False, mean=MEAN, std=STD)
    assert small.dim == 24
    video = _normalised(_raw_video()).requires_grad_(True)
    out = small(video)
    assert not out.requires_grad
    assert torch.equal(out, pixel_targets(video.detach(), 2, 2, MEAN, STD, normalize=False))


def test_pixel_targets_use_the_smile_video_layout_and_constants() -> None:
    from smile import video

    clip = torch.rand(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))  # [B, 3, T, S, S] in [0, 1]
    cubes = pixel_targets(clip, 8, 2, mean=(0.0,) * 3, std=(1.0,) * 3, normalize=False)
    assert torch.equal(cubes, video.patchify(clip, 8, 2))
    assert torch.equal(video.unpatchify(cubes, (2, 2, 2), 8, 2), clip)
    assert IMAGENET_MEAN is video.IMAGENET_MEAN and IMAGENET_STD is video.IMAGENET_STD
