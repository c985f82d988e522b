"""Our state dicts <-> the official VideoMAE/SMILE layout (SPEC §4.3): exact keys, identical outputs."""

from __future__ import annotations

import pytest
import torch
from test_models_keys import finetune_shapes, pretrain_shapes

from smile.models import create_encoder, create_pretrain_model
from smile.models.convert import (
    detect_kind,
    from_official,
    official_keys,
    student_state_dict,
    to_official,
)

TINY = dict(num_frames=4, img_size=32)


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter off its initial value (zero biases, unit LayerNorms would hide swaps)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def tube_mask(batch: int, num_patches: int, masked: int, seed: int = 0) -> torch.Tensor:
    """``[B, N]`` bool with exactly ``masked`` True per row."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(batch, num_patches, generator=gen).argsort(dim=1)
    return order < masked


def test_pretrain_student_round_trips_through_the_official_layout():
    student = perturb(create_pretrain_model("vit_tiny_patch16", target_dim=1536, **TINY))
    lightning = {f"net.{k}": v for k, v in student.state_dict().items()}  # as PretrainLitModule saves it
    official = to_official(lightning)
    # exactly the SPEC §4.3 listing for this depth: tiny = dim 32, depth 2, decoder 16 x 4, pixel head
    assert {k: tuple(v.shape) for k, v in official.items()} == pretrain_shapes(32, 2, 16, 4, 1536)
    assert set(official) == official_keys("pretrain", depth=2, decoder_depth=4)
    back = from_official(official)
    fresh = create_pretrain_model("vit_tiny_patch16", target_dim=1536, **TINY).eval()
    fresh.load_state_dict(back, strict=True)
    for k, v in student.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    video = torch.randn(2, 3, 4, 32, 32)
    mask = tube_mask(2, student.num_patches, 6)
    assert torch.equal(fresh(video, mask), student(video, mask))


def test_classifier_round_trips_through_the_official_finetune_layout():
    clf = perturb(create_encoder("vit_tiny_patch16", num_classes=7, **TINY))
    official = to_official({f"net.{k}": v for k, v in clf.state_dict().items()})
    assert {k: tuple(v.shape) for k, v in official.items()} == finetune_shapes(32, 2, 7)
    assert detect_kind(official) == "finetune"
    fresh = create_encoder("vit_tiny_patch16", num_classes=7, **TINY).eval()
    fresh.load_state_dict(from_official(official), strict=True)
    video = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(fresh(video), clf(video))


def test_wrappers_and_teacher_are_stripped():
    student = create_pretrain_model("vit_tiny_patch16", **TINY)
    sd = {f"net._orig_mod.{k}": v for k, v in student.state_dict().items()}
    sd["target.teacher.weight"] = torch.zeros(3)
    assert set(student_state_dict(sd)) == set(student.state_dict())
    assert set(to_official(sd)) == set(student.state_dict())


def test_fp16_official_file_comes_back_as_float32():
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **TINY)
    half = {k: v.half() for k, v in clf.state_dict().items()}
    back = from_official(half)
    assert all(v.dtype == torch.float32 for v in back.values())


@pytest.mark.parametrize(
    ("extra", "dropped", "match"),
    [
        ({"pos_embed": torch.zeros(1, 8, 32)}, None, "unexpected.*pos_embed"),
        ({}, "encoder.norm.weight", "missing.*encoder.norm.weight"),
    ],
)
def test_non_official_key_sets_are_refused(extra, dropped, match):
    sd = {**create_pretrain_model("vit_tiny_patch16", **TINY).state_dict(), **extra}
    sd.pop(dropped, None)
    with pytest.raises(ValueError, match=match):
        to_official(sd)


def test_unrelated_state_dict_is_refused():
    with pytest.raises(ValueError, match="not a VideoMAE/SMILE state dict"):
        detect_kind({"conv1.weight": torch.zeros(1)})
