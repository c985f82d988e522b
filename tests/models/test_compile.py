"""torch.compile of the tiny student gives the eager outputs and gradients (CPU inductor)."""

import shutil

import pytest
import torch

from smile.masking import tube_mask
from smile.models import create_pretrain_model


def test_compiled_tiny_step_matches_eager():
    torch.manual_seed(0)
    net = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32, target_dim=64)
    video = torch.randn(2, 3, 4, 32, 32)
    mask = tube_mask(2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(0))
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C++ compiler for torch.compile's CPU backend")
    out_c = torch.compile(net)(video, mask)  # any compile error fails the test
    out_c.square().mean().backward()
    grads_c = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    out_e = net(video, mask)
    out_e.square().mean().backward()
    torch.testing.assert_close(out_c, out_e, atol=1e-5, rtol=1e-5)
    for gc, p in zip(grads_c, net.parameters(), strict=True):
        torch.testing.assert_close(gc, p.grad, atol=1e-5, rtol=1e-4)
