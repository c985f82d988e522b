"""Size table, argument validation, initialisation and the sinusoid table."""

from __future__ import annotations

import math

import pytest
import torch

from smile.models import MODEL_SIZES, create_encoder, create_pretrain_model, list_models, sinusoid_table

TINY = {"num_frames": 4, "img_size": 32}


def test_list_models() -> None:
    assert list_models() == [
        "vit_tiny_patch16",
        "vit_small_patch16",
        "vit_base_patch16",
        "vit_large_patch16",
        "vit_huge_patch16",
    ]
    assert MODEL_SIZES["vit_base_patch16"].decoder_embed_dim == 384


def test_sinusoid_table_is_interleaved_sin_cos() -> None:
    table = sinusoid_table(5, 6)
    assert table.shape == (1, 5, 6) and table.dtype == torch.float32
    for pos in range(5):
        for j in range(6):
            angle = pos / 10000 ** (2 * (j // 2) / 6)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert table[0, pos, j].item() == pytest.approx(expected, abs=1e-7)
    assert table[0, 3, 0].item() == pytest.approx(math.sin(3.0))
    assert table[0, 3, 1].item() == pytest.approx(math.cos(3.0))


@pytest.mark.parametrize(
    ("build", "kwargs", "match"),
    [
        (create_pretrain_model, {"name": "vit_gigantic"}, "vit_base_patch16"),
        (create_encoder, {"name": "nope"}, "name='nope'"),
        (create_pretrain_model, {"num_frames": 15}, "num_frames=15 is not divisible by tubelet_size=2"),
        (create_encoder, {"num_frames": 15}, "num_frames=15"),
        (create_pretrain_model, {"img_size": 225}, "img_size=225 is not divisible by patch_size=16"),
        (create_encoder, {"img_size": 225}, "img_size=225"),
        (create_pretrain_model, {"tubelet_size": 0}, "tubelet_size=0"),
        (create_pretrain_model, {"decoder_depth": 0}, "decoder_depth=0"),
        (create_pretrain_model, {"target_dim": -1}, "target_dim=-1"),
        (create_encoder, {"num_classes": -3}, "num_classes=-3"),
        (create_encoder, {"drop_path": 1.5}, "drop_path=1.5"),
        (create_encoder, {"decoder_embed_dim": 8}, "decoder_embed_dim"),
        (create_pretrain_model, {"num_heads": 3}, "num_heads=3"),
    ],
)
def test_bad_config_raises_naming_the_key(build, kwargs: dict, match: str) -> None:
    kwargs = {"name": "vit_tiny_patch16", **kwargs}
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_overrides_change_the_size() -> None:
    model = create_pretrain_model("vit_tiny_patch16", depth=1, decoder_embed_dim=8, **TINY)
    assert len(model.encoder.blocks) == 1
    assert model.mask_token.shape == (1, 1, 8)


def test_pretrain_init() -> None:
    torch.manual_seed(0)
    model = create_pretrain_model("vit_base_patch16", depth=1, decoder_depth=1, **TINY)
    w = model.encoder.blocks[0].mlp.fc1.weight  # Xavier-uniform bound sqrt(6 / (fan_in + fan_out))
    assert w.abs().max() <= math.sqrt(6 / (768 + 3072)) + 1e-6
    assert model.encoder.blocks[0].mlp.fc1.bias.abs().sum() == 0
    assert model.encoder.blocks[0].attn.q_bias.abs().sum() == 0
    assert model.encoder.norm.weight.eq(1).all() and model.encoder.norm.bias.eq(0).all()
    assert model.mask_token.abs().max() <= 0.02
    assert 0.005 < model.mask_token.std() < 0.02


def test_finetune_init_scales_head() -> None:
    torch.manual_seed(0)
    model = create_encoder("vit_base_patch16", depth=1, num_classes=400, **TINY)
    assert 0.015 < model.blocks[0].mlp.fc1.weight.std() < 0.025
    assert 0.015e-3 < model.head.weight.std() < 0.025e-3
    assert model.head.bias.abs().sum() == 0
    assert not hasattr(model, "norm")
    assert model.fc_norm.weight.eq(1).all()
