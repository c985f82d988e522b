"""AVA RoI head, detector and loss: shapes, pooled values, gradients and loss values by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smile.models import create_encoder
from smile.models.detection import AVA_NUM_POSE, AVADetector, AVAHead, ava_loss, ava_scores

FRAMES, IMG, PATCH = 4, 32, 16


def tiny_detector() -> AVADetector:
    enc = create_encoder("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG, global_pool="none", num_classes=0)
    return AVADetector(enc)


def two_clip_boxes() -> list[torch.Tensor]:
    return [
        torch.tensor([[0.0, 0.0, 32.0, 32.0], [0.0, 0.0, 16.0, 16.0], [8.0, 4.0, 30.0, 28.0]]),  # K=3
        torch.tensor([[16.0, 16.0, 32.0, 32.0]]),  # K=1
    ]


def test_detector_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    model = tiny_detector()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    logits = model(video, two_clip_boxes())
    assert logits.shape == (4, 80)
    targets = torch.zeros(4, 80)
    targets[0, 3] = targets[0, 20] = targets[2, 50] = 1.0
    ava_loss(logits, targets).backward()
    assert model.head.fc.weight.grad is not None and model.head.fc.weight.grad.abs().sum() > 0
    assert model.encoder.patch_embed.proj.weight.grad is not None
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    block_grads = [p.grad for p in model.encoder.blocks.parameters()]
    assert all(g is not None for g in block_grads)
    assert sum(float(g.abs().sum()) for g in block_grads if g is not None) > 0


def test_detector_rejects_pooled_encoder() -> None:
    enc = create_encoder("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG, global_pool="mean")
    with pytest.raises(ValueError, match="global_pool"):
        AVADetector(enc)


def test_head_init() -> None:
    head = AVAHead(32)
    assert torch.all(head.fc.bias == 0)
    assert head.fc.weight.abs().max() <= 0.02 + 1e-6  # trunc_normal cuts at 2 std
    assert 0.005 < head.fc.weight.std().item() < 0.015


def test_whole_frame_and_corner_boxes_differ() -> None:
    torch.manual_seed(0)
    head = AVAHead(8, dropout=0.0)
    tokens = torch.randn(1, 2 * 4 * 4, 8)  # grid (2, 4, 4) -> clip 64x64 with 16 px tokens
    boxes = [torch.tensor([[0.0, 0.0, 64.0, 64.0], [0.0, 0.0, 16.0, 16.0]])]
    feats = head.pool(tokens, (2, 4, 4), boxes, (64, 64))
    assert feats.shape == (2, 8)
    assert not torch.allclose(feats[0], feats[1])


def test_pooled_value_on_constant_map() -> None:
    head = AVAHead(5, dropout=0.0)
    value = torch.arange(1.0, 6.0)  # [D]
    tokens = value.expand(1, 2 * 3 * 3, 5).clone()  # every token equal -> constant map
    boxes = [torch.tensor([[3.0, 7.0, 40.0, 29.0]])]
    feats = head.pool(tokens, (2, 3, 3), boxes, (48, 48))
    torch.testing.assert_close(feats, value.unsqueeze(0))


def test_box_over_one_token_returns_its_time_mean() -> None:
    """One token lit (others 0): a box exactly on its 16 px cell pools to its temporal mean."""
    head = AVAHead(4, dropout=0.0)
    t, h, w = 2, 4, 4
    tokens = torch.zeros(1, t * h * w, 4)
    c = torch.tensor([1.0, 2.0, 3.0, 4.0])
    row, col = 1, 2
    tokens[0, 0 * h * w + row * w + col] = 2 * c  # t=0, t-major order
    tokens[0, 1 * h * w + row * w + col] = 0.0  # t=1 -> temporal mean is c
    box = [torch.tensor([[col * PATCH, row * PATCH, (col + 1) * PATCH, (row + 1) * PATCH]], dtype=torch.float)]
    feats = head.pool(tokens, (t, h, w), box, (h * PATCH, w * PATCH))
    torch.testing.assert_close(feats, c.unsqueeze(0))
    # a box on a far cell sees none of it
    far = [torch.tensor([[0.0, 48.0, 16.0, 64.0]])]
    torch.testing.assert_close(head.pool(tokens, (t, h, w), far, (64, 64)), torch.zeros(1, 4))


def test_legacy_roi_align_samples_half_a_cell_off() -> None:
    """aligned=False (AlphAction's RoIAlign3d): cell j is centred at j, so a box on one 16 px cell samples it
    at bin centres 0.5/7 of a cell from its centre (bilinear weight 1 - 0.5/7 per axis) at best."""
    head = AVAHead(4, dropout=0.0, aligned=False)
    t, h, w = 2, 4, 4
    tokens = torch.zeros(1, t * h * w, 4)
    c = torch.tensor([1.0, 2.0, 3.0, 4.0])
    tokens[0, 1 * w + 2] = 2 * c  # t=0, row 1, col 2; t=1 stays 0 -> temporal mean c
    box = [torch.tensor([[2 * PATCH, 1 * PATCH, 3 * PATCH, 2 * PATCH]], dtype=torch.float)]
    feats = head.pool(tokens, (t, h, w), box, (h * PATCH, w * PATCH))
    torch.testing.assert_close(feats, c.unsqueeze(0) * (1 - 0.5 / 7) ** 2)


def test_head_validates_inputs() -> None:
    head = AVAHead(4)
    tokens = torch.zeros(1, 8, 4)
    with pytest.raises(ValueError, match="grid"):
        head(tokens, (2, 3, 3), [torch.zeros(0, 4)], (48, 48))
    with pytest.raises(ValueError, match="box tensors"):
        head(tokens, (2, 2, 2), [], (32, 32))
    with pytest.raises(ValueError, match="non-square"):
        head(tokens, (2, 2, 2), [torch.zeros(0, 4)], (32, 64))


def test_pose_softmax_loss_by_hand() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 80)
    targets = torch.zeros(2, 80)
    targets[0, 11] = 1.0  # person 0: pose "stand" (AVA id 12) + an interaction
    targets[0, 60] = 1.0
    targets[1, 30] = 1.0  # person 1: no pose label -> no softmax term
    pose = -math.log(math.exp(logits[0, 11].item()) / logits[0, :14].exp().sum().item())
    x, y = logits[:, 14:], targets[:, 14:]
    bce = (
        sum(
            -(yv * math.log(1 / (1 + math.exp(-xv))) + (1 - yv) * math.log(1 - 1 / (1 + math.exp(-xv))))
            for xv, yv in zip(x.flatten().tolist(), y.flatten().tolist(), strict=True)
        )
        / x.numel()
    )
    assert ava_loss(logits, targets).item() == pytest.approx(pose + bce, rel=1e-5)


def test_pose_loss_without_poses_is_bce_only() -> None:
    logits = torch.randn(3, 80, requires_grad=True)
    targets = torch.zeros(3, 80)
    targets[:, 40] = 1.0
    loss = ava_loss(logits, targets)
    expected = F.binary_cross_entropy_with_logits(logits[:, 14:], targets[:, 14:])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad[:, :14] == 0)


def test_sigmoid_mode_is_bce_mean() -> None:
    logits = torch.randn(4, 80)
    targets = (torch.rand(4, 80) > 0.8).float()
    torch.testing.assert_close(
        ava_loss(logits, targets, mode="sigmoid"), F.binary_cross_entropy_with_logits(logits, targets)
    )


def test_scores() -> None:
    logits = torch.randn(5, 80)
    scores = ava_scores(logits)
    torch.testing.assert_close(scores[:, :AVA_NUM_POSE].sum(dim=1), torch.ones(5))
    torch.testing.assert_close(scores[:, AVA_NUM_POSE:], logits[:, AVA_NUM_POSE:].sigmoid())
    torch.testing.assert_close(ava_scores(logits, mode="sigmoid"), logits.sigmoid())
    with pytest.raises(ValueError, match="mode"):
        ava_scores(logits, mode="softmax")  # type: ignore[arg-type]
