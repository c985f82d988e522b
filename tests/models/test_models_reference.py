"""Official-layout weights load strictly and give the outputs of a plain reference forward.

The reference below is written independently of ``smile.models``: explicit patch cutting, a
Python-loop sinusoid table, separate q/k/v projections with the q and v biases, explicit softmax
attention, and a decoder run on the *unshuffled* sequence. Agreement within 1e-5 shows that SDPA,
the fused qkv bias and the ``[visible, mask]`` decoder ordering are equivalent to it.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from smile.models import create_encoder, create_pretrain_model

FRAMES, IMG, PATCH, TUBE = 4, 48, 16, 2  # token grid (2, 3, 3) -> N = 18
HEADS = 2  # vit_tiny_patch16: encoder 32 / 2 heads, decoder 16 / 2 heads
SD = dict[str, Tensor]


def random_state_dict(model: torch.nn.Module, seed: int = 0) -> SD:
    """Random values in the model's own key layout, with non-zero q/v biases and LN affine."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in model.state_dict().items():
        noise = torch.randn(value.shape, generator=gen)
        is_ln_weight = key.endswith(("norm1.weight", "norm2.weight", "norm.weight"))
        out[key] = 1.0 + 0.1 * noise if is_ln_weight else 0.2 * noise
    return out


def ref_table(n: int, dim: int) -> Tensor:
    rows = [[p / 10000 ** (2 * (j // 2) / dim) for j in range(dim)] for p in range(n)]
    return torch.tensor([[math.sin(a) if j % 2 == 0 else math.cos(a) for j, a in enumerate(r)] for r in rows])


def ref_patchify(video: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    b, c, t, h, w = video.shape
    x = video.reshape(b, c, t // TUBE, TUBE, h // PATCH, PATCH, w // PATCH, PATCH)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, -1, c * TUBE * PATCH * PATCH)
    return x @ weight.reshape(weight.shape[0], -1).T + bias


def ref_ln(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6) * w + b


def ref_block(x: Tensor, sd: SD, p: str) -> Tensor:
    dim = x.shape[-1]
    hd = dim // HEADS
    y = ref_ln(x, sd[f"{p}.norm1.weight"], sd[f"{p}.norm1.bias"])
    wq, wk, wv = sd[f"{p}.attn.qkv.weight"].split(dim)
    q = y @ wq.T + sd[f"{p}.attn.q_bias"]
    k = y @ wk.T
    v = y @ wv.T + sd[f"{p}.attn.v_bias"]
    heads = []
    for h in range(HEADS):
        s = slice(h * hd, (h + 1) * hd)
        attn = torch.softmax(q[..., s] @ k[..., s].transpose(-1, -2) / math.sqrt(hd), dim=-1)
        heads.append(attn @ v[..., s])
    x = x + torch.cat(heads, -1) @ sd[f"{p}.attn.proj.weight"].T + sd[f"{p}.attn.proj.bias"]
    y = ref_ln(x, sd[f"{p}.norm2.weight"], sd[f"{p}.norm2.bias"])
    y = y @ sd[f"{p}.mlp.fc1.weight"].T + sd[f"{p}.mlp.fc1.bias"]
    y = 0.5 * y * (1.0 + torch.erf(y / math.sqrt(2.0)))
    return x + y @ sd[f"{p}.mlp.fc2.weight"].T + sd[f"{p}.mlp.fc2.bias"]


def ref_encoder(video: Tensor, sd: SD, prefix: str, depth: int, keep: list[int] | None = None) -> Tensor:
    """Patchify, add the table, keep the ``keep`` tokens (all if None), run the blocks."""
    x = ref_patchify(video, sd[f"{prefix}patch_embed.proj.weight"], sd[f"{prefix}patch_embed.proj.bias"])
    x = x + ref_table(x.shape[1], x.shape[2]).to(x.dtype)
    if keep is not None:
        x = x[:, keep]
    for i in range(depth):
        x = ref_block(x, sd, f"{prefix}blocks.{i}")
    return x


def ref_mae(video: Tensor, mask: Tensor, sd: SD) -> Tensor:
    """Per sample: encode visible tokens, scatter back to full order, decode, read masked rows."""
    outs = []
    n = mask.shape[1]
    for b in range(video.shape[0]):
        vis = [i for i in range(n) if not mask[b, i]]
        msk = [i for i in range(n) if mask[b, i]]
        x = ref_encoder(video[b : b + 1], sd, "encoder.", 2, keep=vis)
        x = ref_ln(x, sd["encoder.norm.weight"], sd["encoder.norm.bias"]) @ sd["encoder_to_decoder.weight"].T
        full = sd["mask_token"].expand(1, n, -1).clone()  # unshuffled decoder input [1, N, Dd]
        full[:, vis] = x
        full = full + ref_table(n, full.shape[-1]).to(full.dtype)
        for j in range(2):
            full = ref_block(full, sd, f"decoder.blocks.{j}")
        y = ref_ln(full[:, msk], sd["decoder.norm.weight"], sd["decoder.norm.bias"])
        outs.append(y @ sd["decoder.head.weight"].T + sd["decoder.head.bias"])
    return torch.cat(outs)


def ref_classifier(video: Tensor, sd: SD) -> Tensor:
    x = ref_encoder(video, sd, "", 2).mean(dim=1)
    return ref_ln(x, sd["fc_norm.weight"], sd["fc_norm.bias"]) @ sd["head.weight"].T + sd["head.bias"]


def random_mask(batch: int, n: int, n_masked: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(batch, n, generator=gen).argsort(dim=1)
    return order < n_masked  # [B, N] bool, exactly n_masked True per row


def double(sd: SD) -> SD:
    return {k: v.double() for k, v in sd.items()}


@pytest.mark.parametrize("n_masked", [1, 9, 14])
def test_mae_matches_reference_forward(n_masked: int) -> None:
    torch.manual_seed(0)
    model = create_pretrain_model("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG, decoder_depth=2, target_dim=24)
    sd = random_state_dict(model)
    model.load_state_dict(sd, strict=True)
    model.eval()
    video = torch.randn(3, 3, FRAMES, IMG, IMG)
    mask = random_mask(3, model.num_patches, n_masked, seed=n_masked)
    with torch.no_grad():
        out = model(video, mask)
    expected = ref_mae(video.double(), mask, double(sd))
    assert out.shape == (3, n_masked, 24)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_classifier_matches_reference_forward() -> None:
    model = create_encoder("vit_tiny_patch16", num_classes=5, num_frames=FRAMES, img_size=IMG)
    sd = random_state_dict(model, seed=1)
    model.load_state_dict(sd, strict=True)
    model.eval()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    with torch.no_grad():
        out = model(video)
    torch.testing.assert_close(out.double(), ref_classifier(video.double(), double(sd)), atol=1e-5, rtol=1e-5)


def test_encoder_features_match_reference() -> None:
    model = create_pretrain_model("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG).encoder
    sd = random_state_dict(model, seed=2)
    model.load_state_dict(sd, strict=True)
    model.eval()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    with torch.no_grad():
        out = model.forward_features(video)
    ref = ref_encoder(video.double(), double(sd), "", 2)
    ref = ref_ln(ref, sd["norm.weight"].double(), sd["norm.bias"].double())
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
