"""Layer-wise lr decay (SPEC §7.1): layer ids, per-group lr scales, no-decay membership, schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smile.lit.optim import apply_lr_scale, layer_decay_groups, layer_id, warmup_cosine_lambda
from smile.models import create_encoder


def _net() -> nn.Module:
    return create_encoder("vit_tiny_patch16", num_classes=8, num_frames=8, img_size=32)  # 2 blocks


def _by_name(net: nn.Module, groups: list[dict]) -> dict[str, dict]:
    names = {id(p): n for n, p in net.named_parameters()}
    return {names[id(p)]: g for g in groups for p in g["params"]}


def test_layer_ids_follow_the_reference():
    for name in ("patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed", "cls_token", "mask_token"):
        assert layer_id(name, 2) == 0, name
    assert layer_id("blocks.0.attn.qkv.weight", 2) == 1
    assert layer_id("blocks.1.mlp.fc2.bias", 2) == 2
    assert layer_id("fc_norm.weight", 2) == 3 and layer_id("head.bias", 2) == 3
    assert layer_id("blocks.11.norm1.weight", 12) == 12 and layer_id("head.weight", 12) == 13


def test_lr_scales_and_weight_decay_of_a_two_block_model():
    net = _net()
    groups = layer_decay_groups(net, weight_decay=0.05, layer_decay=0.75, num_layers=2)
    by_name = _by_name(net, groups)
    assert set(by_name) == {n for n, _ in net.named_parameters()}  # every parameter exactly once
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    expected_scale = {
        "patch_embed.proj.weight": 0.75**3,
        "patch_embed.proj.bias": 0.75**3,
        "blocks.0.attn.qkv.weight": 0.75**2,
        "blocks.0.attn.q_bias": 0.75**2,
        "blocks.1.mlp.fc1.weight": 0.75,
        "blocks.1.norm2.bias": 0.75,
        "fc_norm.weight": 1.0,
        "head.weight": 1.0,
        "head.bias": 1.0,
    }
    for name, scale in expected_scale.items():
        assert by_name[name]["lr_scale"] == pytest.approx(scale), name
    no_decay = {n for n, g in by_name.items() if g["weight_decay"] == 0.0}
    decay = {n for n, g in by_name.items() if g["weight_decay"] == 0.05}
    assert {"patch_embed.proj.bias", "blocks.0.attn.q_bias", "blocks.1.norm1.weight", "fc_norm.weight"} <= no_decay
    assert {"head.bias", "blocks.0.attn.proj.bias"} <= no_decay
    assert {"patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "head.weight"} <= decay
    assert all(by_name[n].get("name", "").endswith("_no_decay") for n in no_decay)
    # grouped by (layer, decay): 4 layers x {decay, no decay}, one group each
    names = [g["name"] for g in groups]
    assert len(names) == 8 and set(names) == {f"layer_{i}_{k}" for i in range(4) for k in ("decay", "no_decay")}


def test_position_and_class_tokens_are_layer_zero_without_decay():
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
            self.head = nn.Linear(8, 2)

    net = Tokens()
    by_name = _by_name(net, layer_decay_groups(net, 0.05, 0.5, num_layers=3))
    for name in ("pos_embed", "cls_token"):
        assert by_name[name]["lr_scale"] == pytest.approx(0.5**4) and by_name[name]["weight_decay"] == 0.0
    assert by_name["head.weight"]["lr_scale"] == 1.0 and by_name["head.weight"]["weight_decay"] == 0.05


def test_layer_decay_one_scales_nothing_and_frozen_params_are_left_out():
    net = _net()
    net.patch_embed.requires_grad_(False)
    groups = layer_decay_groups(net, 0.05, 1.0, num_layers=2)
    assert all(g["lr_scale"] == 1.0 for g in groups)
    assert not any(n.startswith("patch_embed") for n in _by_name(net, groups))
    with pytest.raises(ValueError, match="layer_decay"):
        layer_decay_groups(net, 0.05, 0.0, num_layers=2)


def test_scaled_groups_keep_their_scale_through_warmup_and_cosine():
    net = _net()
    groups = apply_lr_scale(layer_decay_groups(net, 0.05, 0.75, num_layers=2), base_lr=1e-3)
    opt = torch.optim.AdamW(groups, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine_lambda(10, 2, min_lr_ratio=0.1))
    assert all(g["lr"] == 0.0 for g in opt.param_groups)  # warmup starts at 0
    for _ in range(2):
        opt.step()
        sched.step()
    for g in opt.param_groups:  # peak: base lr x scale
        assert g["lr"] == pytest.approx(1e-3 * g["lr_scale"])
    for _ in range(20):
        opt.step()
        sched.step()
    for g in opt.param_groups:  # floor: min lr x scale, as the reference's schedule[step] * lr_scale
        assert g["lr"] == pytest.approx(1e-4 * g["lr_scale"])


def test_lowshot_subset_is_class_balanced_seeded_and_model_independent():
    from smile.data.subsets import LowShotSubset, lowshot_subset

    labels = [0] * 30 + [1] * 25 + [2] * 4  # class 2 has fewer clips than asked
    sub = lowshot_subset(labels, per_class=5, seed=1)
    counts = [sum(labels[i] == c for i in sub) for c in range(3)]
    assert counts == [5, 5, 4] and sub == sorted(sub) and len(set(sub)) == 14
    assert sub == lowshot_subset(labels, per_class=5, seed=1)  # the same clips for every model
    assert sub != lowshot_subset(labels, per_class=5, seed=2)
    # SEVERE "10^3": ceil(1000 / C) per class
    ucf = [c for c in range(101) for _ in range(30)]
    assert len(lowshot_subset(ucf, num_videos=1000)) == 1010
    with pytest.raises(ValueError, match="exactly one"):
        lowshot_subset(labels)

    class Data:
        num_sample = 1

        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return {"label": self.labels[i], "index": i}

    subset = LowShotSubset(Data(labels), per_class=2, seed=0)
    assert len(subset) == 6 and [subset[i]["index"] for i in range(6)] == lowshot_subset(labels, per_class=2, seed=0)
    assert subset.num_sample == 1 and list(subset.labels) == [0, 0, 1, 1, 2, 2]
