"""DINO teacher, random teacher and FeatureTarget (tiny models, offline)."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from smile.teachers import (
    DINOTeacher,
    FeatureTarget,
    RandomTeacher,
    clip_channel_standardize,
)

TINY_DINO = {"img_size": 32, "depth": 1}


def _video(b: int = 2, t: int = 4, h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def dino(tmp_path_factory):
    """A tiny timm ViT-S/16 (1 block, 32 px) saved as the official DINO backbone state dict."""
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, **TINY_DINO).eval()
    with torch.no_grad():
        model.norm.weight.normal_(1.0, 0.3)
        model.norm.bias.normal_(0.0, 0.3)
    path = tmp_path_factory.mktemp("dino") / "dino_deitsmall16_pretrain.pth"
    torch.save(model.state_dict(), path)
    return model, path


# -- DINO ----------------------------------------------------------------------------------------
def test_dino_official_keys(dino):
    keys = set(dino[0].state_dict())
    assert {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "norm.weight",
        "norm.bias",
        "blocks.0.attn.qkv.weight",
    } <= keys
    assert not any(k.startswith("head") for k in keys)


def test_dino_tokens_are_forward_features_without_cls(dino):
    model, path = dino
    teacher = DINOTeacher.from_file(path, **TINY_DINO)
    assert teacher.dim == 384 and teacher.patch_size == 16 and teacher.frame_stride == 2
    video = _video(t=6)
    out = teacher(video)
    assert out.shape == (2, 3 * 2 * 2, 384)
    with torch.no_grad():
        expected = torch.stack(
            [torch.cat([model.forward_features(video[b, :, t][None])[0, 1:] for t in (0, 2, 4)]) for b in range(2)]
        )
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_dino_training_checkpoint_layout(dino, tmp_path):
    """``{"teacher": {"backbone.*", "head.*"}}`` with DDP prefixes loads to the same features."""
    model, path = dino
    sd = {f"module.backbone.{k}": v for k, v in model.state_dict().items()}
    sd["module.head.mlp.0.weight"] = torch.randn(8, 384)
    ckpt = tmp_path / "checkpoint_teacher.pth"
    torch.save({"teacher": sd}, ckpt)
    video = _video()
    a = DINOTeacher.from_file(path, **TINY_DINO)(video)
    b = DINOTeacher.from_file(str(ckpt), **TINY_DINO)(video)
    assert torch.equal(a, b)


def test_dino_other_frame_size(dino):
    teacher = DINOTeacher.from_file(dino[1], **TINY_DINO)
    out = teacher(_video(b=1, t=2, h=48, w=64))  # pos_embed resampled 2x2 -> 3x4 by timm
    assert out.shape == (1, 3 * 4, 384) and torch.isfinite(out).all()


def test_dino_partial_and_missing_refused(dino, tmp_path):
    sd = dict(dino[0].state_dict())
    del sd["norm.weight"]
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"partial\.pth.*missing keys \[norm\.weight\]"):
        DINOTeacher.from_file(path, **TINY_DINO)
    gone = tmp_path / "missing.pth"
    with pytest.raises(FileNotFoundError) as err:
        DINOTeacher.from_file(gone, arch="vit_base_patch16_224")
    msg = str(err.value)
    assert str(gone) in msg and "dino_vitbase16_pretrain.pth" in msg and "facebookresearch/dino" in msg
    assert "model.teacher.path" in msg


# -- random teacher --------------------------------------------------------------------------------
def test_random_teacher_deterministic_and_rng_neutral():
    video = _video()
    state = torch.random.get_rng_state()
    a, b = RandomTeacher(seed=3), RandomTeacher(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a(video), b(video))
    assert not torch.allclose(a(video), RandomTeacher(seed=4)(video))
    assert a(video).shape == (2, 2 * 2 * 2, 32)


def test_random_teacher_frozen_and_stays_eval():
    teacher = RandomTeacher(dim=16, depth=2, heads=4)
    teacher.train()
    nn.Sequential(teacher).train(True)
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    out = teacher(_video().requires_grad_(True))
    assert not out.requires_grad and out.dtype == torch.float32


def test_random_teacher_sees_spatial_content_of_kept_frames_only():
    teacher = RandomTeacher()
    video = _video(b=1, t=4)
    base = teacher(video)  # [1, 2 frames * 4 tokens, 32]
    moved = video.clone()
    moved[:, :, 0, :16, :16] += 1.0  # top-left patch of frame 0
    out = teacher(moved)
    assert not torch.allclose(out[:, 0], base[:, 0])  # that token changes ...
    assert torch.equal(out[:, 4:], base[:, 4:])  # ... frame 2's tokens do not
    skipped = video.clone()
    skipped[:, :, 1] += 5.0  # frame 1 is never encoded (frame_stride 2)
    assert torch.equal(teacher(skipped), base)


# -- FeatureTarget / factories -----------------------------------------------------------------------
def test_feature_target_standardises_each_channel_per_clip():
    teacher = RandomTeacher(dim=24, heads=2)
    target = FeatureTarget(teacher)
    video = _video(b=3, t=4, h=64, w=48)
    out = target(video)
    assert out.shape == (3, 2 * 4 * 3, 24) and out.dtype == torch.float32 and target.dim == 24
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(3, 24), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=1, unbiased=True), torch.ones(3, 24), atol=1e-4, rtol=0)
    assert torch.equal(out, clip_channel_standardize(teacher(video)))
    assert torch.equal(FeatureTarget(teacher, norm="none")(video), teacher(video))


def test_no_gradient_reaches_the_teacher():
    class Plain(nn.Module):  # a teacher without FrozenTeacher's safeguards
        dim = 8

        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 8)
            self.drop = nn.Dropout(0.5)

        def forward(self, video):
            return self.drop(self.proj(video.mean((3, 4)).transpose(1, 2)))

    target = FeatureTarget(Plain()).train()
    assert not target.teacher.training and not target.teacher.drop.training
    student = nn.Parameter(torch.ones(8))
    video = _video().requires_grad_(True)
    targets = target(video)
    assert not targets.requires_grad
    ((student * targets).sum() + student.sum()).backward()
    assert student.grad is not None and video.grad is None
    assert all(p.grad is None and not p.requires_grad for p in target.teacher.parameters())


def test_feature_target_attributes_and_refusals():
    target = FeatureTarget(RandomTeacher(dim=16), norm="token_layernorm")
    assert target.norm == "token_layernorm" and target.dim == 16 and target.patch_size == 16
    with pytest.raises(FileNotFoundError, match="model.teacher.path"):
        DINOTeacher.from_file(None, arch="vit_base_patch16_224")
    with pytest.raises(ValueError, match="normalisation"):
        FeatureTarget(RandomTeacher(), norm="l2")
