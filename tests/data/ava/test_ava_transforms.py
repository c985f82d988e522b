"""AVA transforms as the reference: short-side resize, random crop, flip; fixed-size evaluation; exact boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from smile.data.ava.transforms import (
    AvaTestTransform,
    AvaTrainTransform,
    ClipCrop,
    as_size,
    centred_crop,
    sample_crop,
    transform_clip,
)

H, W = 100, 200  # the hand-made frame; short side 50 -> 50 x 100 (scale 0.5)
RED = [255, 0, 0]
OBJECT = torch.tensor([[140.0, 30.0, 180.0, 70.0]])  # the red object: 70..90 x 15..35 after the resize


def _frames(t: int = 3) -> torch.Tensor:
    """uint8 [T, 3, H, W]: black, frame t's green channel = 10 t, the red object at x 140..180, y 30..70."""
    frames = torch.zeros(t, 3, H, W, dtype=torch.uint8)
    frames[:, 1] = (10 * torch.arange(t, dtype=torch.uint8))[:, None, None]
    frames[:, :, 30:70, 140:180] = torch.tensor(RED, dtype=torch.uint8)[:, None, None]
    return frames


class _Draws:
    """A stand-in generator whose ``random`` returns given values: u, v (the crop), then the flip draw."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self, size: int | None = None) -> float | np.ndarray:
        if size is None:
            return self.values.pop(0)
        return np.array([self.values.pop(0) for _ in range(size)])


def _train(crop=(40, 40), draws=(50.4 / 60, 0.55, 0.9), boxes=OBJECT, t=3):
    """The train transform on the hand-made frame; default draws: crop at x0 = int(50.4) = 50, y0 = int(5.5) = 5."""
    return AvaTrainTransform(crop, short_side=50)(_frames(t), boxes, _Draws(*draws))


def test_as_size_accepts_int_pair_and_listconfig():
    assert as_size(224) == (224, 224)
    assert as_size((160, 288)) == (160, 288)
    assert as_size(OmegaConf.create({"s": [160, 288]}).s) == (160, 288)
    with pytest.raises(ValueError, match="int or \\[H, W\\]"):
        as_size([1, 2, 3])
    with pytest.raises(ValueError, match=">= 1"):
        as_size(0)


def test_short_side_resize_keeps_the_aspect_and_truncates():
    transform = AvaTrainTransform(40, short_side=50)
    assert transform.resized_size((100, 200)) == (50, 100)
    assert transform.resized_size((200, 100)) == (100, 50)  # portrait: the width is the short side
    assert transform.resized_size((48, 64)) == (50, 66)  # 50 * 64 / 48 = 66.67, truncated
    assert AvaTrainTransform(224, short_side=256).resized_size((360, 640)) == (256, 455)  # AVA's 16:9


@pytest.mark.parametrize("flip", [False, True])
def test_boxes_through_resize_crop_and_flip(flip):
    boxes = torch.tensor([[140.0, 30.0, 180.0, 70.0], [80.0, 0.0, 120.0, 40.0], [0.0, 0.0, 40.0, 30.0],
                          [170.0, 60.0, 200.0, 100.0]])  # fmt: skip
    clip, out, keep = _train(draws=(50.4 / 60, 0.55, 0.1 if flip else 0.9), boxes=boxes)
    # x 0.5, y 0.5, shift by (50, 5), clamp to 40 x 40: the third box lies left of the crop and is dropped
    expected = torch.tensor([[20.0, 10.0, 40.0, 30.0], [0.0, 0.0, 10.0, 15.0], [35.0, 25.0, 40.0, 40.0]])
    if flip:
        expected = torch.tensor([[0.0, 10.0, 20.0, 30.0], [30.0, 0.0, 40.0, 15.0], [0.0, 25.0, 5.0, 40.0]])
    assert keep.tolist() == [True, True, False, True] and clip.shape == (3, 3, 40, 40) and clip.dtype == torch.uint8
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("flip", "centre", "away"), [(False, (30, 20), (10, 20)), (True, (10, 20), (30, 20))])
def test_train_pixels_under_the_box_are_the_object(flip, centre, away):
    clip, out, _ = _train(draws=(50.4 / 60, 0.55, 0.1 if flip else 0.9))
    assert out.tolist() == ([[0.0, 10.0, 20.0, 30.0]] if flip else [[20.0, 10.0, 40.0, 30.0]])
    (x, y), (ax, ay) = centre, away
    assert clip[:, :, y, x].T.tolist() == [RED] * 3  # every frame: the same resize, crop and flip
    assert clip[:, :, ay, ax].T.tolist() == [[0, 0, 0], [0, 10, 0], [0, 20, 0]]  # the mirror: background, in order


def test_seeded_crops_follow_the_reference_formula():
    for seed in range(50):
        rng = np.random.default_rng(seed)
        u, v = rng.random(2)
        expected = ClipCrop(int(u * 60), int(v * 10), 40, 40, bool(rng.random() < 0.5))
        crop = sample_crop((50, 100), (40, 40), np.random.default_rng(seed))
        assert crop == expected and 0 <= crop.x0 <= 60 and 0 <= crop.y0 <= 10
    assert sample_crop((50, 100), (50, 100), np.random.default_rng(3), flip_prob=0.0) == ClipCrop(0, 0, 100, 50)


def test_seeded_transform_is_reproducible_and_keeps_boxes_on_the_object():
    transform = AvaTrainTransform((40, 80), short_side=50)  # every crop holds >= 10 px of the object
    flips, crops = 0, set()
    for seed in range(20):
        clip, boxes, keep = transform(_frames(1), OBJECT, np.random.default_rng(seed))
        again = transform(_frames(1), OBJECT, np.random.default_rng(seed))
        assert torch.equal(clip, again[0]) and torch.equal(boxes, again[1])
        assert keep.tolist() == [True] and clip.shape == (3, 1, 40, 80)
        x1, y1, x2, y2 = boxes[0].tolist()
        assert clip[:, 0, int((y1 + y2) / 2), int((x1 + x2) / 2)].tolist() == RED, seed
        flips += int((x1 + x2) / 2 < 40)  # unflipped, the object is right of centre in every crop
        crops.add((x1, y1))
    assert 0 < flips < 20 and len(crops) > 2  # both flip outcomes and several positions were drawn


def test_all_boxes_outside_fall_back_to_the_union_then_the_largest_box():
    # crop at (0, 0) covers x 0..40 of the 50 x 100 frame; both boxes (x 50..76 after the resize) lie right of it
    boxes = torch.tensor([[100.0, 40.0, 120.0, 60.0], [130.0, 50.0, 152.0, 72.0]])
    _, out, keep = _train(draws=(0.0, 0.0, 0.9), boxes=boxes)
    # union 50..76 x 20..36, centre (63, 28): the crop at (43, 8)
    assert keep.tolist() == [True, True]
    torch.testing.assert_close(out, torch.tensor([[7.0, 12.0, 17.0, 22.0], [22.0, 17.0, 33.0, 28.0]]))
    # persons further apart than the crop: the union's centre (50, 7.5) crop at (30, 0) misses both again,
    # so the crop is centred on the larger box (95, 7.5), clamped to (60, 0); the flip draw is kept
    apart = torch.tensor([[0.0, 0.0, 20.0, 20.0], [180.0, 0.0, 200.0, 30.0]])
    _, out, keep = _train(draws=(0.5, 0.0, 0.1), boxes=apart)
    assert keep.tolist() == [False, True]
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 10.0, 15.0]]))
    union = torch.tensor([0.0, 0.0, 100.0, 15.0])
    assert centred_crop((50, 100), (40, 40), union, True) == ClipCrop(30, 0, 40, 40, True)


def test_test_transform_stretches_with_separate_scales():
    clip, boxes = AvaTestTransform((60, 50))(_frames(), torch.tensor([[40.0, 20.0, 120.0, 60.0], [0, 0, 200, 100]]))
    assert clip.shape == (3, 3, 60, 50) and clip.dtype == torch.uint8
    torch.testing.assert_close(boxes, torch.tensor([[10.0, 12.0, 30.0, 36.0], [0.0, 0.0, 50.0, 60.0]]))  # x 0.25, y 0.6
    assert clip[1, :, 0, 0].tolist() == [0, 10, 20]  # frames stay in order (green = 10 t)


def test_test_pixels_under_the_box_are_the_object():
    clip, boxes = AvaTestTransform(50)(_frames(), OBJECT)
    torch.testing.assert_close(boxes, torch.tensor([[35.0, 15.0, 45.0, 35.0]]))  # x 0.25, y 0.5, no flip
    assert clip[:, :, 25, 40].T.tolist() == [RED] * 3
    assert clip[:, 0, 25, 9].tolist() == [0, 0, 0]  # the mirror position: background


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="uint8 frames \\[T, 3, H, W\\]"):
        transform_clip(torch.zeros(2, H, W, 3, dtype=torch.uint8), (40, 80))
    with pytest.raises(ValueError, match="AVA frame 100x200 .*short_side=50 is 50x100, smaller than the "
                                         "training crop video.img_size=\\[40, 120\\]"):  # fmt: skip
        _train(crop=(40, 120))
    with pytest.raises(ValueError, match="data.train_dataset.short_side=200 is below both sides .*img_size=\\[224"):
        AvaTrainTransform(224, short_side=200)
    with pytest.raises(ValueError, match="flip_prob"):
        AvaTrainTransform(224, short_side=256, flip_prob=1.5)
