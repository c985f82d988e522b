"""The reference's box augmentation (AlphAction's ``random_aug``) and test-time extension (``extend``)."""

from __future__ import annotations

import pytest
import torch

from smile.models.detection import extend_boxes, jitter_boxes


def test_extend_grows_each_side_by_half_the_fraction_and_clips_to_the_clip():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 2.0, 50.0, 98.0]])
    out = extend_boxes(boxes, (100, 60), (0.1, 0.05))
    # w 20 h 40 -> pad 1, 1; w 50 h 96 -> pad 2.5, 2.4, clipped to W=60, H=100
    torch.testing.assert_close(out, torch.tensor([[9.0, 19.0, 31.0, 61.0], [0.0, 0.0, 52.5, 100.0]]))


def test_jitter_moves_each_edge_within_its_range_exactly_as_drawn():
    boxes = torch.tensor([[20.0, 10.0, 60.0, 90.0]]).repeat(500, 1)  # w 40, h 80
    out = jitter_boxes(boxes, (200, 200), (0.2, 0.1, 0.1, 0.05), generator=torch.Generator().manual_seed(0))
    u = torch.rand(boxes.shape, generator=torch.Generator().manual_seed(0))  # the same draws
    low, high = torch.tensor([-0.2, -0.1, -0.1, -0.05]), torch.tensor([0.1, 0.05, 0.2, 0.1])
    expected = boxes + torch.tensor([40.0, 80.0, 40.0, 80.0]) * (low + u * (high - low))
    torch.testing.assert_close(out, expected)  # far from the borders: no clamping
    assert out[:, 0].min() >= 20 - 8 and out[:, 0].max() <= 20 + 4  # x1: out 0.2 w, in 0.1 w
    assert out[:, 2].min() >= 60 - 4 and out[:, 2].max() <= 60 + 8  # x2: in 0.1 w, out 0.2 w
    assert out[:, 3].min() >= 90 - 4 and out[:, 3].max() <= 90 + 8  # y2: in 0.05 h, out 0.1 h


@pytest.mark.parametrize("box", [[0.0, 0.0, 1.0, 1.0], [99.0, 99.0, 100.0, 100.0], [0.0, 0.0, 100.0, 100.0]])
def test_jitter_stays_inside_the_clip_and_at_least_a_pixel(box):
    boxes = torch.tensor([box]).repeat(200, 1)
    out = jitter_boxes(boxes, (100, 100), (0.5, 0.5, 0.5, 0.5), generator=torch.Generator().manual_seed(1))
    assert out.min() >= 0 and out[:, [2, 3]].max() <= 100
    assert ((out[:, 2] - out[:, 0]) >= 1 - 1e-5).all() and ((out[:, 3] - out[:, 1]) >= 1 - 1e-5).all()  # float32
