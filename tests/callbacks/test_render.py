"""smile.callbacks.render: the pure picture functions behind the media callback and smile-vis."""

from __future__ import annotations

import av
import pytest
import torch
from PIL import Image

from smile.callbacks.render import (
    PixelCubeTarget,
    confusion_image,
    frame_strip,
    paint_mask,
    pca_colours,
    reconstruct_pixels,
    side_by_side,
    write_animation,
)
from smile.teachers import FeatureTarget, PixelTarget, RandomTeacher

P, PT = 8, 2


def _clip(b: int = 2, t: int = 4, s: int = 16) -> torch.Tensor:
    return torch.rand(b, 3, t, s, s, generator=torch.Generator().manual_seed(0))  # [B, 3, T, S, S] in [0, 1]


def test_pixel_targets_are_drawn_as_pixels_and_feature_targets_are_not():
    assert isinstance(PixelTarget(P, PT), PixelCubeTarget)
    assert not isinstance(FeatureTarget(RandomTeacher(dim=8)), PixelCubeTarget)


@pytest.mark.parametrize("normalize", [True, False])
def test_perfect_predictions_reconstruct_the_clip(normalize):
    clip, target = _clip(), PixelTarget(P, PT, normalize=normalize, mean=(0, 0, 0), std=(1, 1, 1))
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, [1, 2, 5, 6]] = True
    preds = target(clip)[mask].reshape(2, 4, -1)  # what a perfect student predicts at masked tokens
    assert torch.allclose(reconstruct_pixels(clip, mask, preds, target), clip, atol=1e-5)
    wrong = reconstruct_pixels(clip, mask, torch.zeros_like(preds), target)
    cover = paint_mask(torch.ones_like(clip), mask, P, PT) == 0  # True inside masked cubes
    assert torch.equal(wrong[~cover], clip[~cover]) and not torch.allclose(wrong[cover], clip[cover])


def test_paint_mask_blacks_out_exactly_the_masked_cubes():
    clip = _clip() + 0.1
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, 0] = mask[1, 7] = True  # token 0: frames 0-1, top-left; token 7: frames 2-3, bottom-right
    out = paint_mask(clip, mask, P, PT)
    assert (out[0, :, :2, :8, :8] == 0).all() and (out[1, :, 2:, 8:, 8:] == 0).all()
    assert (out == 0).sum() == 2 * 3 * PT * P * P


def test_pca_colours_are_shared_between_reference_and_others():
    feats = torch.randn(16, 10, generator=torch.Generator().manual_seed(1))
    ref, same, other = pca_colours(feats, feats.clone(), feats + 5)
    assert ref.shape == (16, 3) and torch.equal(ref, same)
    assert ref.min() >= 0 and ref.max() <= 1 and not torch.equal(ref, other)
    assert pca_colours(torch.randn(5, 2))[0].shape == (5, 3)  # fewer than 3 channels: padded


def test_strip_and_side_by_side_layout():
    panels = [torch.full((3, 4, 6, 5), k, dtype=torch.uint8) for k in range(3)]  # [3, T, H, W]
    strip = frame_strip(panels)
    assert strip.shape == (3 * 6, 4 * 5, 3) and strip[6:12].eq(1).all()
    frames = side_by_side(panels)
    assert frames.shape == (4, 6, 3 * 5, 3) and frames[:, :, 10:].eq(2).all()


def test_confusion_image_names_counts_and_colour_bar():
    names = ["ApplyEyeMakeup", "Basketball", "Diving", "Surfing"]
    matrix = torch.tensor([[5, 1, 0, 0], [0, 3, 2, 0], [1, 0, 4, 0], [0, 0, 0, 6]])
    image = confusion_image(matrix, names)
    h, w, _ = image.shape
    assert image.dtype == torch.uint8 and 4 * 48 < h < 4 * 48 + 200 and 4 * 48 < w < 4 * 48 + 300
    assert len(torch.unique(image.reshape(-1, 3), dim=0)) > 20  # text, cells, bar: not blank
    unnamed = confusion_image(matrix)
    assert not torch.equal(image[:, :60], unnamed[:, :60])  # names on the ticks differ from class_<i>
    row, col = (image[..., 2].int() - image[..., 0].int() > 60).nonzero().min(0).values.tolist()  # dark blue
    assert row > 12 and col > 40  # the map sits right of the tick names and under the title


def test_confusion_image_scales_to_400_classes_without_names():
    image = confusion_image(torch.eye(400) * 3, [f"class {i}" for i in range(400)])
    h, w, _ = image.shape
    assert 800 <= h < 900 and 800 <= w < 900  # 2 px per class, no tick names
    blue = image[..., 2].int() - image[..., 0].int() > 60  # [H, W] dark blue: the diagonal and the colour bar
    assert 400 <= int(blue[:, : w - 60].sum()) <= 400 * 4 + 10  # 400 diagonal cells of 2 x 2 px


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_animations_have_every_frame(tmp_path, suffix):
    frames = torch.randint(0, 255, (5, 15, 21, 3), dtype=torch.uint8)  # odd sides: mp4 pads them
    path = write_animation(tmp_path / f"a.{suffix}", frames)
    if suffix == "gif":
        assert Image.open(path).n_frames == 5
    else:
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 5
