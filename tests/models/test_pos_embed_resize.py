"""AVA: the encoder takes larger frames than it was built for, with pretraining's position table resized
per time slot to their grid (VideoMAE-Action-Detection's evaluation on full 256 px frames)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smile.models import create_encoder, sinusoid_table
from smile.models.detection import AVADetector
from smile.models.layers import run_blocks
from smile.models.pos_embed import interpolated_table

KW = {"num_frames": 4, "patch_size": 16, "tubelet_size": 2, "global_pool": "none"}
TINY = {"embed_dim": 32, "depth": 1, "num_heads": 2}


def test_same_grid_is_the_reference_table_bit_for_bit():
    assert torch.equal(interpolated_table((2, 3, 4), (2, 3, 4), 16), sinusoid_table(24, 16))


def test_larger_grid_resizes_each_time_slot_of_the_table():
    table = sinusoid_table(2 * 2 * 2, 8).reshape(2, 2, 2, 8)  # [t, h0, w0, D]
    out = interpolated_table((2, 3, 5), (2, 2, 2), 8).reshape(2, 3, 5, 8)  # [t, h, w, D]
    for t in range(2):
        by_hand = F.interpolate(table[t].permute(2, 0, 1)[None], size=(3, 5), mode="bicubic", align_corners=False)
        assert torch.equal(out[t], by_hand[0].permute(1, 2, 0))
    assert not torch.allclose(out[0], out[1])  # time slots keep their own rows


def test_dynamic_encoder_takes_larger_frames_with_the_resized_table():
    torch.manual_seed(0)
    enc = create_encoder("vit_tiny_patch16", img_size=32, dynamic_size=True, overrides=TINY, **KW).eval()
    small, large = torch.randn(1, 3, 4, 32, 32), torch.randn(1, 3, 4, 48, 64)
    assert enc.forward_features(small).shape == (1, 8, 32)
    assert enc.forward_features(large).shape == (1, 2 * 3 * 4, 32)
    assert torch.equal(enc.position_table((2, 2, 2)), enc.pos_embed)  # own size: the reference's buffer
    assert torch.equal(enc.position_table((2, 3, 4)), interpolated_table((2, 3, 4), (2, 2, 2), 32))
    # the resized table is what the tokens get: the same encoder without position table differs by exactly it
    tokens = enc.patch_embed(large) + interpolated_table((2, 3, 4), (2, 2, 2), 32)
    expected = enc.norm(run_blocks(enc.blocks, tokens, checkpoint=False))
    torch.testing.assert_close(enc.forward_features(large), expected, rtol=0, atol=0)
    assert "pos_embed" not in enc.state_dict()  # fixed, never saved: checkpoints load either way
    with pytest.raises(ValueError, match="H and W multiples of 16"):
        enc.forward_features(torch.randn(1, 3, 4, 40, 64))


def test_fixed_encoder_refuses_other_sizes_and_the_detector_uses_the_frames_grid():
    fixed = create_encoder("vit_tiny_patch16", img_size=32, overrides=TINY, **KW)
    with pytest.raises(ValueError, match=r"\(T, H, W\)=\(4, 32, 32\)"):
        fixed.forward_features(torch.randn(1, 3, 4, 48, 64))
    det = AVADetector(create_encoder("vit_tiny_patch16", img_size=32, dynamic_size=True, overrides=TINY, **KW)).eval()
    boxes = [torch.tensor([[0.0, 0.0, 32.0, 48.0], [32.0, 0.0, 64.0, 48.0]])]
    assert det(torch.randn(1, 3, 4, 48, 64), boxes).shape == (2, 80)
