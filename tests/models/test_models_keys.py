"""State-dict keys and shapes must match the official checkpoints (SPEC §4.2-4.3) exactly."""

from __future__ import annotations

import pytest
import torch

from smile.models import create_encoder, create_pretrain_model

Shapes = dict[str, tuple[int, ...]]


def block_shapes(prefix: str, dim: int) -> Shapes:
    """Keys of one reference block (q/v bias, bias-free qkv, 4x MLP, no gamma)."""
    return {
        f"{prefix}.norm1.weight": (dim,),
        f"{prefix}.norm1.bias": (dim,),
        f"{prefix}.attn.q_bias": (dim,),
        f"{prefix}.attn.v_bias": (dim,),
        f"{prefix}.attn.qkv.weight": (3 * dim, dim),
        f"{prefix}.attn.proj.weight": (dim, dim),
        f"{prefix}.attn.proj.bias": (dim,),
        f"{prefix}.norm2.weight": (dim,),
        f"{prefix}.norm2.bias": (dim,),
        f"{prefix}.mlp.fc1.weight": (4 * dim, dim),
        f"{prefix}.mlp.fc1.bias": (4 * dim,),
        f"{prefix}.mlp.fc2.weight": (dim, 4 * dim),
        f"{prefix}.mlp.fc2.bias": (dim,),
    }


def encoder_shapes(prefix: str, dim: int, depth: int) -> Shapes:
    """Patch embed + blocks of a ViT with tubelet 2, patch 16, RGB input."""
    out: Shapes = {
        f"{prefix}patch_embed.proj.weight": (dim, 3, 2, 16, 16),
        f"{prefix}patch_embed.proj.bias": (dim,),
    }
    for i in range(depth):
        out.update(block_shapes(f"{prefix}blocks.{i}", dim))
    return out


def pretrain_shapes(dim: int, depth: int, dec_dim: int, dec_depth: int, out_dim: int) -> Shapes:
    """The SPEC §4.3 pretraining listing, generated from its pattern."""
    out: Shapes = {"mask_token": (1, 1, dec_dim)}
    out.update(encoder_shapes("encoder.", dim, depth))
    out.update({"encoder.norm.weight": (dim,), "encoder.norm.bias": (dim,)})
    for j in range(dec_depth):
        out.update(block_shapes(f"decoder.blocks.{j}", dec_dim))
    out.update({"decoder.norm.weight": (dec_dim,), "decoder.norm.bias": (dec_dim,)})
    out.update({"decoder.head.weight": (out_dim, dec_dim), "decoder.head.bias": (out_dim,)})
    out["encoder_to_decoder.weight"] = (dec_dim, dim)
    return out


def finetune_shapes(dim: int, depth: int, num_classes: int) -> Shapes:
    """The SPEC §4.3 finetune listing: no norm, fc_norm + head, no pos_embed/cls_token."""
    out = encoder_shapes("", dim, depth)
    out.update({"fc_norm.weight": (dim,), "fc_norm.bias": (dim,)})
    out.update({"head.weight": (num_classes, dim), "head.bias": (num_classes,)})
    return out


def shapes_of(model: torch.nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_vit_base_pretrain_keys_clip_head() -> None:
    with torch.device("meta"):
        model = create_pretrain_model("vit_base_patch16", target_dim=768)
    expected = pretrain_shapes(768, 12, 384, 4, 768)
    assert len(expected) == 218
    assert shapes_of(model) == expected


def test_vit_base_finetune_keys_and_param_count() -> None:
    with torch.device("meta"):
        model = create_encoder("vit_base_patch16", num_classes=400)
    expected = finetune_shapes(768, 12, 400)
    assert len(expected) == 162
    assert shapes_of(model) == expected
    assert n_params(model) == 86_534_800


def test_vit_base_pixel_head_matches_official_videomae() -> None:
    with torch.device("meta"):
        model = create_pretrain_model("vit_base_patch16")  # default target_dim = 1536 pixels
    assert shapes_of(model) == pretrain_shapes(768, 12, 384, 4, 1536)
    assert tuple(model.decoder.head.weight.shape) == (1536, 384)


@pytest.mark.parametrize(
    ("name", "dim", "depth", "dec_dim", "pretrain_m", "finetune_m"),
    [
        ("vit_small_patch16", 384, 12, 192, 23.88, 22.03),
        ("vit_large_patch16", 1024, 24, 512, 317.39, 304.27),
    ],
)
def test_small_and_large_spot_shapes(
    name: str, dim: int, depth: int, dec_dim: int, pretrain_m: float, finetune_m: float
) -> None:
    with torch.device("meta"):
        pre = create_pretrain_model(name, target_dim=768)
        fin = create_encoder(name, num_classes=400)
    shapes = shapes_of(pre)
    assert shapes["mask_token"] == (1, 1, dec_dim)
    assert shapes["encoder_to_decoder.weight"] == (dec_dim, dim)
    assert shapes["decoder.head.weight"] == (768, dec_dim)
    assert shapes == pretrain_shapes(dim, depth, dec_dim, 4, 768)
    assert shapes_of(fin) == finetune_shapes(dim, depth, 400)
    assert round(n_params(pre) / 1e6, 2) == pretrain_m
    assert round(n_params(fin) / 1e6, 2) == finetune_m


def test_vit_huge_builds() -> None:
    """The reference cannot build ViT-H for pretraining (SPEC §10.8); this project can."""
    with torch.device("meta"):
        pre = create_pretrain_model("vit_huge_patch16", target_dim=768)
        fin = create_encoder("vit_huge_patch16", num_classes=400)
    assert shapes_of(pre) == pretrain_shapes(1280, 32, 640, 4, 768)
    assert round(n_params(fin) / 1e6, 2) == 632.12


def test_no_position_tables_in_state_dict() -> None:
    model = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32)
    keys = set(model.state_dict())
    assert not any("pos_embed" in k for k in keys)
    assert not any("pos_embed" in n for n, _ in model.named_parameters())
    buffers = dict(model.named_buffers())
    assert "encoder.pos_embed" in buffers and "decoder_pos_embed" in buffers
