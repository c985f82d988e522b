"""GPU checks (`make test-gpu`; skipped without CUDA): bf16 training step, flash vs math attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from smile.masking import tube_mask
from smile.models import create_pretrain_model
from smile.teachers import PixelTarget

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _student():
    torch.manual_seed(0)
    return create_pretrain_model("vit_small_patch16", num_frames=4, img_size=64).cuda()


def test_bf16_step_is_finite_and_close_to_fp32():
    net = _student()
    video = torch.randn(4, 3, 4, 64, 64, device="cuda")
    mask = tube_mask(4, (2, 4, 4), 0.75, generator=torch.Generator().manual_seed(0), device="cuda")
    target = PixelTarget().cuda()(video)[mask].view(4, -1, 1536)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss_bf16 = F.mse_loss(net(video, mask).float(), target)
    loss_bf16.backward()
    assert torch.isfinite(loss_bf16) and all(torch.isfinite(p.grad).all() for p in net.parameters())
    loss_fp32 = F.mse_loss(net(video, mask), target)
    assert loss_bf16.item() == pytest.approx(loss_fp32.item(), rel=2e-2)


def test_flash_attention_matches_math_attention():
    net = _student().eval()
    video = torch.randn(2, 3, 4, 64, 64, device="cuda")
    mask = tube_mask(2, (2, 4, 4), 0.5, generator=torch.Generator().manual_seed(0), device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            flash = net(video, mask).float()
        with sdpa_kernel(SDPBackend.MATH):
            math = net(video, mask).float()
    torch.testing.assert_close(flash, math, atol=3e-2, rtol=3e-2)
