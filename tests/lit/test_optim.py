import math

import pytest
import torch

from smile.lit.optim import param_groups, resolve_warmup_steps, scale_lr, warmup_cosine
from smile.models import create_pretrain_model


def test_param_groups_follow_the_reference_no_decay_rule():
    net = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32, decoder_depth=1)
    groups = param_groups(net, weight_decay=0.05)
    names = {id(p): n for n, p in net.named_parameters()}
    decay = {names[id(p)] for p in groups[0]["params"]}
    no_decay = {names[id(p)] for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0
    assert "mask_token" in no_decay  # 3-D, excluded by name
    assert "encoder.blocks.0.attn.q_bias" in no_decay and "encoder.norm.weight" in no_decay
    assert "encoder.patch_embed.proj.bias" in no_decay
    assert "encoder.blocks.0.attn.qkv.weight" in decay and "encoder_to_decoder.weight" in decay
    assert "encoder.patch_embed.proj.weight" in decay
    assert all(p.ndim > 1 for p in groups[0]["params"])
    assert len(decay) + len(no_decay) == len(list(net.parameters()))


def test_frozen_parameters_are_left_out():
    net = torch.nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    groups = param_groups(net, 0.1)
    assert len(groups) == 1 and groups[0]["params"][0] is net.weight


def test_lr_scales_with_global_batch():
    assert scale_lr(1.5e-4, 256) == pytest.approx(1.5e-4)
    assert scale_lr(1.5e-4, 64) == pytest.approx(3.75e-5)
    assert scale_lr(1e-3, 16) == pytest.approx(6.25e-5)  # the K400 finetune script's number
    with pytest.raises(ValueError):
        scale_lr(1e-3, 0)


def test_warmup_cosine_values():
    base, final, warm, total = 1.0, 0.1, 5, 25
    assert warmup_cosine(0, total, warm, base, final) == 0.0  # linspace(0, base, warm) starts at 0
    assert warmup_cosine(2, total, warm, base, final) == pytest.approx(0.5)
    assert warmup_cosine(4, total, warm, base, final) == pytest.approx(1.0)
    assert warmup_cosine(5, total, warm, base, final) == pytest.approx(1.0)
    assert warmup_cosine(15, total, warm, base, final) == pytest.approx(0.55)  # half way: mean of ends
    expected = final + 0.5 * (base - final) * (1 + math.cos(math.pi * 4 / 20))
    assert warmup_cosine(9, total, warm, base, final) == pytest.approx(expected)
    assert warmup_cosine(25, total, warm, base, final) == pytest.approx(final)
    assert warmup_cosine(99, total, warm, base, final) == pytest.approx(final)


def test_warmup_steps_override_epochs():
    assert resolve_warmup_steps(40, -1, 10.0) == 400
    assert resolve_warmup_steps(40, 7, 10.0) == 7
    assert resolve_warmup_steps(0.5, -1, 10.0) == 5


def test_schedule_index_clean_and_reference_sawtooth():
    from smile.lit.optim import schedule_index

    assert [schedule_index(s, 10, "clean", 2) for s in (0, 9, 10, 25)] == [0, 9, 10, 25]
    # 10 loader steps per epoch with 2 masks per clip: the reference reads epoch * 5 + step
    assert [schedule_index(s, 10, "reference_sawtooth", 2) for s in (0, 9, 10, 19, 20)] == [0, 9, 5, 14, 10]
    assert schedule_index(7, 10, "reference_sawtooth", 1) == 7
    with pytest.raises(ValueError, match="model.scheduler.mode"):
        schedule_index(0, 10, "bogus")
