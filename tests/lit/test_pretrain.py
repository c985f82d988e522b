"""PretrainLitModule: a frozen teacher (eval mode, out of checkpoints), gradients only in the student, all views."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from smile.lit import PretrainLitModule
from smile.lit.optim import WarmupCosine
from smile.masking import gather_tokens
from smile.models import create_pretrain_model
from smile.teachers import FeatureTarget, RandomTeacher

# Tiny geometry: 4 frames of 32 px, patch 16, tubelet 2 -> 2x2x2 = 8 tokens; the teacher sees
# frames 0 and 2 (frame_stride = tubelet) in 16-px patches -> the same 8 tokens, 16 features each.
FRAMES, SIZE, TOKENS, DIM = 4, 32, 8, 16


def make_module(student_seed: int = 0, teacher_seed: int = 0) -> PretrainLitModule:
    """A tiny student + random frozen teacher in the module (adapt here when the constructor changes)."""
    torch.manual_seed(student_seed)
    net = create_pretrain_model("vit_tiny_patch16", num_frames=FRAMES, img_size=SIZE, decoder_depth=1, target_dim=DIM)
    teacher = RandomTeacher(dim=DIM, patch_size=16, depth=1, frame_stride=2, seed=teacher_seed)
    target = FeatureTarget(teacher, norm="token_layernorm")
    optimizer = partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05, fused=None)
    return PretrainLitModule(net, target, optimizer, WarmupCosine(), batch_size=2, num_mask_views=2)


def random_masks(batch: int, views: int, masked: int, seed: int) -> torch.Tensor:
    """``[B, V, N]`` bool, exactly ``masked`` True per row."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(batch, views, TOKENS, generator=gen).argsort(-1)
    return order < masked


@pytest.fixture
def video() -> torch.Tensor:
    return torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))  # [B, 3, T, H, W]


def test_the_teacher_stays_frozen_and_in_eval_mode_through_train():
    module = make_module().train()
    assert module.training and module.net.training
    assert not any(m.training for m in module.target.modules())
    assert not any(p.requires_grad for p in module.target.parameters())
    assert all(p.requires_grad for p in module.net.parameters())
    module.eval().train(True)  # a second round trip (Lightning toggles modes around validation)
    assert module.net.training and not any(m.training for m in module.target.modules())


def test_the_teacher_is_out_of_the_state_dict_and_loads_back():
    module = make_module()
    keys = set(module.state_dict())
    teacher_keys = set(module.target.state_dict(prefix="target."))
    assert teacher_keys and not keys & teacher_keys
    assert keys == set(module.net.state_dict(prefix="net."))
    other = make_module(student_seed=1)  # another student, the same teacher
    assert not torch.equal(other.net.encoder.patch_embed.proj.weight, module.net.encoder.patch_embed.proj.weight)
    assert not other.load_state_dict(module.state_dict(), strict=True).missing_keys
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in module.state_dict().items())
    live = make_module().target.state_dict()
    assert all(torch.equal(v, live[k]) for k, v in other.target.state_dict().items())  # teacher kept its weights


def test_a_saved_checkpoint_holds_no_teacher_and_resumes_strictly(tmp_path):
    module = make_module()
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    saved = torch.load(tmp_path / "m.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert saved and all(k.startswith("net.") for k in saved)
    assert not any(k.startswith("target.") for k in saved)
    fresh = make_module(student_seed=2)
    fresh.load_state_dict(saved, strict=True)  # what Lightning does on resume
    assert torch.equal(fresh.net.decoder.head.weight, module.net.decoder.head.weight)


def test_gradients_reach_only_the_student(video):
    module = make_module().train()
    loss = module.compute_loss(video, random_masks(2, 2, 6, seed=0))
    loss.backward()
    with_grad = {n for n, p in module.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, _ in module.net.named_parameters(prefix="net")}
    assert all(p.grad is None for p in module.target.parameters())
    grads = [p.grad.abs().sum().item() for n, p in module.named_parameters() if n.startswith("net.encoder.blocks")]
    assert min(grads) > 0  # the encoder really learns from the loss


def test_the_loss_is_the_mean_over_both_mask_views(video):
    module = make_module().train()
    mask = random_masks(2, 2, 6, seed=0)
    loss = module.compute_loss(video, mask)
    with torch.no_grad():
        targets = module.target(video)  # [B, N, C]
        per_view = [
            F.mse_loss(module.net(video, mask[:, v]), gather_tokens(targets, mask[:, v])) for v in range(2)
        ]  # equal masked counts: the mean of the per-view MSEs is the MSE over both views
    assert loss.item() == pytest.approx((per_view[0].item() + per_view[1].item()) / 2, rel=1e-5)
    assert abs(per_view[0].item() - per_view[1].item()) > 1e-4  # the two views really differ


def test_changing_only_the_second_view_changes_the_loss(video):
    module = make_module().train()
    mask = random_masks(2, 2, 6, seed=0)
    other = mask.clone()
    other[:, 1] = random_masks(2, 1, 6, seed=7)[:, 0]
    assert not torch.equal(other[:, 1], mask[:, 1]) and torch.equal(other[:, 0], mask[:, 0])
    with torch.no_grad():
        a, b = module.compute_loss(video, mask), module.compute_loss(video, other)
        first_only = module.compute_loss(video, mask[:, :1])
    assert abs(a.item() - b.item()) > 1e-4
    assert abs(a.item() - first_only.item()) > 1e-4  # the second view counts
