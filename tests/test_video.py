"""smile.video: normalisation round trips and the patch layout."""

import pytest
import torch

from smile.video import IMAGENET_MEAN, IMAGENET_STD, denormalize, normalize, patchify, token_grid, unpatchify


def test_normalize_uint8_and_float_agree_and_round_trip():
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8, generator=g)
    a = normalize(u8)
    b = normalize(u8.float() / 255.0)
    torch.testing.assert_close(a, b)
    # a hand-computed pixel
    expected = (u8[0, 1, 2, 3, 4].item() / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    assert a[0, 1, 2, 3, 4].item() == pytest.approx(expected, abs=1e-6)
    torch.testing.assert_close(denormalize(a), u8.float() / 255.0, atol=1e-6, rtol=0)


def test_normalize_channel_last_frames():
    frames = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    out = normalize(frames, channel_dim=-1)
    ref = normalize(frames.permute(3, 0, 1, 2))  # [3, T, H, W]
    torch.testing.assert_close(out.permute(3, 0, 1, 2), ref)


def test_normalize_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="per-channel"):
        normalize(torch.zeros(1, 3, 2, 4, 4), mean=(0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_patchify_round_trip_and_layout():
    video = torch.randn(2, 3, 4, 32, 48)
    cubes = patchify(video, patch_size=16, tubelet_size=2)
    assert cubes.shape == (2, 2 * 2 * 3, 2 * 16 * 16 * 3)
    grid = token_grid(video.shape, 16, 2)
    assert grid == (2, 2, 3)
    assert torch.equal(unpatchify(cubes, grid, 16, 2), video)
    # token 1 is (t=0, h=0, w=1); value 0 is pixel (0, 0, 0) channel 0, value 1 its channel 1
    assert cubes[0, 1, 0] == video[0, 0, 0, 0, 16]
    assert cubes[0, 1, 1] == video[0, 1, 0, 0, 16]


def test_token_grid_names_the_bad_dims():
    with pytest.raises(ValueError, match=r"divisible by \(tubelet, p, p\)"):
        token_grid((3, 32, 32), 16, 2)
