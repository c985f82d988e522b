"""Forward shapes, mask validation, gradients and activation checkpointing of the tiny models."""

from __future__ import annotations

import pytest
import torch

from smile.models import MaskedAutoencoder, create_encoder, create_pretrain_model

FRAMES, IMG = 4, 32  # grid (2, 2, 2) -> N = 8 tokens
N = 8


def tiny_mae(**kwargs: object) -> MaskedAutoencoder:
    return create_pretrain_model("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG, target_dim=12, **kwargs)


def tube_mask(batch: int, n_masked: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, N, generator=gen).argsort(dim=1) < n_masked  # [B, N], exact count


def test_geometry_properties() -> None:
    model = tiny_mae()
    assert model.encoder.grid == (2, 2, 2)
    assert model.encoder.num_patches == model.num_patches == N
    assert model.encoder.embed_dim == 32
    assert model.decoder.embed_dim == 16


def test_mae_output_shape() -> None:
    model = tiny_mae()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    out = model(video, tube_mask(2, 6))
    assert out.shape == (2, 6, 12)


def test_output_rows_follow_ascending_masked_index() -> None:
    """Row k of the output is the k-th masked token: the row depends only on that token's position.

    Two masks that mask the same tokens of sample 0 but list different visible tokens elsewhere
    must give the same prediction wherever the masked token sets agree within a sample.
    """
    model = tiny_mae().eval()
    video = torch.randn(1, 3, FRAMES, IMG, IMG)
    mask = torch.zeros(1, N, dtype=torch.bool)
    mask[0, [1, 4, 6]] = True
    with torch.no_grad():
        out = model(video, mask)[0]  # [3, C]
        # decode again with the rows of the decoder input in the reverse order of masked tokens
        x_vis = model.encoder_to_decoder(model.encoder.forward_features(video, mask))
        pos = model.decoder_pos_embed
        masked = torch.tensor([6, 4, 1])
        x = torch.cat([x_vis + pos[:, ~mask[0]], model.mask_token + pos[:, masked]], dim=1)
        reversed_out = model.decoder(x, 3)[0]
    torch.testing.assert_close(out, reversed_out.flip(0), atol=1e-5, rtol=1e-5)


def test_forward_features_shapes() -> None:
    model = tiny_mae()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    assert model.encoder.forward_features(video, tube_mask(2, 6)).shape == (2, 2, 32)
    assert model.encoder.forward_features(video).shape == (2, N, 32)
    classifier = create_encoder("vit_tiny_patch16", num_classes=7, num_frames=FRAMES, img_size=IMG)
    assert classifier.forward_features(video).shape == (2, N, 32)
    assert classifier(video).shape == (2, 7)
    assert classifier(video, tube_mask(2, 4)).shape == (2, 7)
    features = create_encoder("vit_tiny_patch16", num_classes=0, num_frames=FRAMES, img_size=IMG)
    assert features(video).shape == (2, 32)


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (torch.zeros(2, N, dtype=torch.float32), "bool"),
        (torch.zeros(2, N + 1, dtype=torch.bool), "shape"),
        (torch.zeros(3, N, dtype=torch.bool), "shape"),
        (torch.tensor([[True] * 4 + [False] * 4, [True] * 5 + [False] * 3]), "same number"),
    ],
)
def test_mask_validation(mask: torch.Tensor, match: str) -> None:
    model = tiny_mae()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    with pytest.raises(ValueError, match=match):
        model(video, mask)
    with pytest.raises(ValueError, match=match):
        model.encoder.forward_features(video, mask)


def test_wrong_video_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="T, H, W"):
        tiny_mae().encoder.forward_features(torch.randn(1, 3, FRAMES, 48, 48))


def test_gradients_reach_every_parameter() -> None:
    model = tiny_mae().train()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    mask = tube_mask(2, 6)
    target = torch.randn(2, N, 12)
    loss = (model(video, mask) - target[mask].reshape(2, -1, 12)).pow(2).mean()
    loss.backward()
    names = {n for n, _ in model.named_parameters()}
    assert not any("pos_embed" in n for n in names)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    for name in (
        "mask_token",
        "encoder_to_decoder.weight",
        "encoder.patch_embed.proj.weight",
        "encoder.blocks.0.attn.q_bias",
        "encoder.blocks.0.attn.v_bias",
        "decoder.head.weight",
    ):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    for name, buf in model.named_buffers():
        assert not buf.requires_grad, name


def test_no_qkv_bias_variant_has_no_bias_keys() -> None:
    model = create_encoder("vit_tiny_patch16", num_frames=FRAMES, img_size=IMG, qkv_bias=False)
    assert not any(k.endswith(("q_bias", "v_bias")) for k in model.state_dict())
    assert model(torch.randn(1, 3, FRAMES, IMG, IMG)).shape == (1, 32)


def _loss_and_grads(model: MaskedAutoencoder, video: torch.Tensor, mask: torch.Tensor):
    torch.manual_seed(123)  # same DropPath draws in both runs
    out = model(video, mask)
    out.square().mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_activation_checkpointing_matches_plain_forward() -> None:
    plain = tiny_mae(drop_path=0.3).train()
    ckpt = tiny_mae(drop_path=0.3, use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    mask = tube_mask(2, 5)
    out_a, grads_a = _loss_and_grads(plain, video, mask)
    out_b, grads_b = _loss_and_grads(ckpt, video, mask)
    torch.testing.assert_close(out_a, out_b, atol=0, rtol=0)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[name], atol=1e-6, rtol=1e-5, msg=name)


def test_drop_path_is_inactive_in_eval() -> None:
    model = tiny_mae(drop_path=0.5).eval()
    video = torch.randn(1, 3, FRAMES, IMG, IMG)
    mask = tube_mask(1, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(video, mask), model(video, mask))


def test_bf16_autocast_runs() -> None:
    model = tiny_mae()
    video = torch.randn(2, 3, FRAMES, IMG, IMG)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(video, tube_mask(2, 6))
    assert out.shape == (2, 6, 12) and torch.isfinite(out.float()).all()


def test_encoder_to_decoder_has_pytorch_default_linear_init() -> None:
    # ViT-B widths (768 -> 384) with one block each: the bridge alone decides the statistic.
    torch.manual_seed(0)
    model = create_pretrain_model(
        "vit_base_patch16", num_frames=FRAMES, img_size=IMG, decoder_depth=1, depth=1, target_dim=12
    )
    weight = model.encoder_to_decoder.weight.detach()  # [384, 768]
    assert weight.shape == (384, 768) and model.encoder_to_decoder.bias is None
    bound = 1 / 768**0.5  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert float(weight.abs().max()) <= bound
    assert float(weight.std()) == pytest.approx(bound / 3**0.5, rel=0.01)  # 0.0208; Xavier: 0.0417
