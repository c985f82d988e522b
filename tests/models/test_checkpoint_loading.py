"""Initialising classifiers and students from this project's and the official checkpoint files."""

from __future__ import annotations

import argparse

import pytest
import torch
from smile_testing import TINY as SMALL_RUN
from smile_testing import compose_cfg
from test_models_keys import pretrain_shapes
from test_safe_loading import assert_refused, write_bad_checkpoints

from smile.build import build_module
from smile.models import create_encoder, create_pretrain_model, load_encoder_weights, load_student_weights
from smile.models.checkpoint import CheckpointError

TINY = dict(num_frames=4, img_size=32)
FINETUNE_NEW = ["fc_norm.bias", "fc_norm.weight", "head.bias", "head.weight"]


def _official_pretrain_file(tmp_path, shapes: dict, dtype=torch.float32):
    """An official VideoMAE/SMILE pretraining .pth: weights under `model`, the args pickled beside them."""
    gen = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=gen).to(dtype) for k, s in shapes.items()}
    path = tmp_path / "checkpoint-799.pth"
    torch.save(
        {"model": sd, "epoch": 799, "args": argparse.Namespace(model="pretrain_videomae_base_patch16_224")}, path
    )
    return path, sd


def test_official_vit_b_layout_initialises_the_classifier(tmp_path):
    path, sd = _official_pretrain_file(tmp_path, pretrain_shapes(768, 12, 384, 4, 768))
    clf = create_encoder("vit_base_patch16", num_classes=400)
    report = load_encoder_weights(clf, path)
    assert report.missing == FINETUNE_NEW
    assert len(report.loaded) == 162 - 4
    assert set(report.unexpected) == {k.removeprefix("encoder.") for k in sd if k.startswith("encoder.norm")}
    own = clf.state_dict()
    assert torch.equal(own["blocks.11.attn.qkv.weight"], sd["encoder.blocks.11.attn.qkv.weight"])
    assert torch.equal(own["patch_embed.proj.weight"], sd["encoder.patch_embed.proj.weight"])


def test_project_pretraining_checkpoint_initialises_the_classifier(tmp_path):
    student = create_pretrain_model("vit_tiny_patch16", target_dim=1536, **TINY)
    path = tmp_path / "last.ckpt"
    state = {f"net.{k}": v for k, v in student.state_dict().items()}
    state["target.teacher.w"] = torch.zeros(2)  # a teacher would never be loaded
    torch.save({"state_dict": state, "global_step": 3}, path)
    clf = create_encoder("vit_tiny_patch16", num_classes=8, **TINY)
    report = load_encoder_weights(clf, path)
    assert report.missing == FINETUNE_NEW
    assert report.unexpected == ["norm.bias", "norm.weight"]  # the pretraining encoder's final LN
    for k, v in clf.state_dict().items():
        if not k.startswith(("fc_norm", "head")):
            assert torch.equal(v, student.state_dict()[f"encoder.{k}"]), k
    # identical tokens before pooling: the student's encoder minus its final norm
    video = torch.randn(2, 3, 4, 32, 32)
    student.encoder.norm = torch.nn.Identity()
    clf.eval(), student.eval()  # the classifier's default drop_path (0.1) is stochastic in train mode
    torch.testing.assert_close(clf.forward_features(video), student.encoder.forward_features(video))


def test_finetuned_fp16_module_file_loads_directly(tmp_path):
    src = create_encoder("vit_tiny_patch16", num_classes=8, **TINY)
    path = tmp_path / "mp_rank_00_model_states.pt"
    torch.save({"module": {k: v.half() for k, v in src.state_dict().items()}}, path)
    dst = create_encoder("vit_tiny_patch16", num_classes=8, **TINY)
    report = load_encoder_weights(dst, path)
    assert report.missing == [] and report.unexpected == []
    assert dst.state_dict()["head.weight"].dtype == torch.float32


def test_shape_mismatch_is_refused_unless_reinitialised(tmp_path):
    src = create_encoder("vit_tiny_patch16", num_classes=400, **TINY)
    path = tmp_path / "k400.pth"
    torch.save({"model": src.state_dict()}, path)
    dst = create_encoder("vit_tiny_patch16", num_classes=101, **TINY)
    with pytest.raises(ValueError, match=r"shape mismatch for 2 tensor\(s\): head\.(bias|weight)"):
        load_encoder_weights(dst, path)
    report = load_encoder_weights(dst, path, reinit=("head",))
    assert report.missing == ["head.bias", "head.weight"]
    other = create_encoder("vit_tiny_patch16", num_classes=101, embed_dim=48, **TINY)
    with pytest.raises(ValueError, match=r"shape mismatch for \d+ tensor\(s\): blocks\.0"):
        load_encoder_weights(other, path, reinit=("head",))


def test_student_weights_round_trip(tmp_path):
    a = create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY)
    path = tmp_path / "s.pth"
    torch.save({"model": a.state_dict(), "args": argparse.Namespace(x=1)}, path)
    b = create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY)
    report = load_student_weights(b, path)
    assert report.missing == [] and report.unexpected == []
    video, mask = torch.randn(1, 3, 4, 32, 32), torch.tensor([[True, False] * 4])
    assert torch.equal(a(video, mask), b(video, mask))


# -- loading that loads nothing, or too little, is an error (issue 12.5) -----------------------
def _pretrain_ckpt(tmp_path, drop: str = "", rename: str = ""):
    """Our pretraining .ckpt of a tiny student; keys starting with ``drop`` removed, ``rename`` prefixed."""
    student = create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY)
    state = {f"{rename}net.{k}": v for k, v in student.state_dict().items() if not k.startswith(drop or "\0")}
    path = tmp_path / "pre.ckpt"
    torch.save({"state_dict": state}, path)
    return path, student


def test_zero_tensor_init_fails_for_classifier_and_student(tmp_path):
    path, _ = _pretrain_ckpt(tmp_path, rename="model.")  # wrong key layout: nothing matches
    for model, load in (
        (create_encoder("vit_tiny_patch16", num_classes=3, **TINY), load_encoder_weights),
        (create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY), load_student_weights),
    ):
        with pytest.raises(CheckpointError) as err:
            load(model, path)
        message = str(err.value)
        assert message.startswith(f"{path}: matched 0 of the model's {len(model.state_dict())} tensors"), message
        assert "the file's keys: model.net." in message and "the model's keys: " in message
        assert "blocks.0.attn.proj.bias" in message  # a sample of the expected keys, sorted


def test_partial_init_fails_naming_the_missing_tensors(tmp_path):
    path, _ = _pretrain_ckpt(tmp_path, drop="encoder.blocks.1.")
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **TINY)
    with pytest.raises(CheckpointError, match=r"missing 13: blocks\.1\.attn\.proj\.bias, blocks\.1\.attn\.proj"):
        load_encoder_weights(clf, path)
    student = create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY)
    with pytest.raises(CheckpointError, match=r"missing 13: encoder\.blocks\.1\.attn\.proj\.bias"):
        load_student_weights(student, path)


def test_classifier_file_must_bring_its_head(tmp_path):
    """A finetuned classifier file without fc_norm but with a head: fc_norm would stay random."""
    src = create_encoder("vit_tiny_patch16", num_classes=3, **TINY)
    path = tmp_path / "ft.pth"
    torch.save({"model": {k: v for k, v in src.state_dict().items() if not k.startswith("fc_norm")}}, path)
    with pytest.raises(CheckpointError, match=r"missing 2: fc_norm\.bias, fc_norm\.weight"):
        load_encoder_weights(create_encoder("vit_tiny_patch16", num_classes=3, **TINY), path)


def test_init_from_with_nothing_matching_stops_the_build(tmp_path):
    path, _ = _pretrain_ckpt(tmp_path, rename="model.")
    for overrides in ([*SMALL_RUN], [*SMALL_RUN, "model=classifier", "data.num_classes=8"]):
        cfg = compose_cfg([*overrides, f"model.init_from={path}"], tmp_path / "run")
        with pytest.raises(CheckpointError, match="matched 0 of the model's"):
            build_module(cfg)
    path, student = _pretrain_ckpt(tmp_path)  # the normal pretraining -> classifier init still works
    module = build_module(compose_cfg([*SMALL_RUN, "model=classifier", f"model.init_from={path}"], tmp_path / "r"))
    assert torch.equal(module.net.state_dict()["blocks.1.mlp.fc2.weight"], student.encoder.blocks[1].mlp.fc2.weight)


# -- unreadable files get our one-line message (issue 13.5) ------------------------------------
@pytest.mark.parametrize("kind", ["random", "truncated", "hostile", "os_class"])
def test_bad_files_refused_by_every_init_loader(tmp_path, kind):
    files = write_bad_checkpoints(tmp_path / "bad", tmp_path / "pwned")
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **TINY)
    student = create_pretrain_model("vit_tiny_patch16", target_dim=32, **TINY)
    for model, load in ((clf, load_encoder_weights), (student, load_student_weights)):
        with pytest.raises(CheckpointError) as err:
            load(model, files[kind])
        assert_refused(str(err.value), files[kind])
    cfg = compose_cfg([*SMALL_RUN, f"model.init_from={files[kind]}"], tmp_path / "run")
    with pytest.raises(CheckpointError) as err:
        build_module(cfg)
    assert_refused(str(err.value), files[kind])
    assert not (tmp_path / "pwned").exists()
