"""Initialising an AVA detector from every checkpoint layout: tensors land exactly, gaps are refused."""

from __future__ import annotations

import argparse

import pytest
import torch

from smile.models import create_encoder, create_pretrain_model
from smile.models.checkpoint import CheckpointError
from smile.models.detection import AVADetector, AVAHead
from smile.models.detection_weights import load_detector_weights

TINY = dict(num_frames=4, img_size=32)
HEAD_KEYS = ["head.fc.bias", "head.fc.weight"]


def _detector(seed: int = 1) -> AVADetector:
    torch.manual_seed(seed)
    enc = create_encoder("vit_tiny_patch16", global_pool="none", drop_path=0.0, **TINY)
    return AVADetector(enc, AVAHead(enc.embed_dim, dropout=0.0))


def _encoder_equals(det: AVADetector, source: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> None:
    """Every encoder tensor of ``det`` equals ``source[name]`` exactly (``skip`` checked by the caller)."""
    for k, v in det.encoder.state_dict().items():
        if not k.startswith(skip):
            assert torch.equal(v, source[k].float()), k


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Distinct values everywhere (LayerNorms start at 1/0, which would hide a wrong mapping)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return module


def test_project_pretraining_checkpoint(tmp_path):
    student = _randomised(create_pretrain_model("vit_tiny_patch16", target_dim=64, **TINY), 0)
    state = {f"net.{k}": v for k, v in student.state_dict().items()}
    state["target.teacher.w"] = torch.zeros(2)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "global_step": 3}, path)
    det = _detector()
    head_before = {k: v.clone() for k, v in det.head.state_dict().items()}
    report = load_detector_weights(det, path)
    assert report.missing == HEAD_KEYS and report.unexpected == []
    assert len(report.loaded) == len(det.encoder.state_dict()) == 30
    _encoder_equals(det, {k[len("encoder.") :]: v for k, v in student.state_dict().items() if k.startswith("encoder.")})
    assert all(torch.equal(v, head_before[k]) for k, v in det.head.state_dict().items())  # fresh head kept


def test_official_pretraining_pth(tmp_path):
    mae = _randomised(create_pretrain_model("vit_tiny_patch16", target_dim=64, **TINY), 2)
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": mae.state_dict(), "epoch": 799, "args": argparse.Namespace(model="pretrain")}, path)
    det = _detector()
    report = load_detector_weights(det, path)
    assert report.missing == HEAD_KEYS and report.unexpected == []
    _encoder_equals(det, {k[len("encoder.") :]: v for k, v in mae.state_dict().items() if k.startswith("encoder.")})


def test_project_classifier_checkpoint_maps_fc_norm_to_norm(tmp_path):
    clf = _randomised(create_encoder("vit_tiny_patch16", num_classes=8, drop_path=0.0, **TINY), 3)
    path = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in clf.state_dict().items()}}, path)
    det = _detector()
    report = load_detector_weights(det, path)
    assert report.missing == HEAD_KEYS
    assert report.unexpected == [
        "encoder.fc_norm.bias",
        "encoder.fc_norm.weight",
        "encoder.head.bias",
        "encoder.head.weight",
    ]
    src = clf.state_dict()
    _encoder_equals(det, src, skip=("norm.",))
    assert torch.equal(det.encoder.norm.weight, src["fc_norm.weight"])
    assert torch.equal(det.encoder.norm.bias, src["fc_norm.bias"])
    # the detector's tokens are the classifier's tokens under fc_norm
    video = torch.randn(2, 3, 4, 32, 32)
    clf.eval(), det.eval()
    torch.testing.assert_close(det.encoder.forward_features(video), clf.fc_norm(clf.forward_features(video)))


def test_official_finetuned_fp16_module_pth(tmp_path):
    clf = _randomised(create_encoder("vit_tiny_patch16", num_classes=400, **TINY), 4)
    path = tmp_path / "mp_rank_00_model_states.pt"
    half = {k: v.half() for k, v in clf.state_dict().items()}
    torch.save({"module": half}, path)
    det = _detector()
    report = load_detector_weights(det, path)
    assert report.missing == HEAD_KEYS and len(report.unexpected) == 4
    assert det.encoder.norm.weight.dtype == torch.float32
    _encoder_equals(det, half, skip=("norm.",))
    assert torch.equal(det.encoder.norm.weight, half["fc_norm.weight"].float())


def test_detection_checkpoint_loads_the_head(tmp_path):
    src = _randomised(_detector(5), 5)
    path = tmp_path / "detector.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in src.state_dict().items()}}, path)
    det = _detector(6)
    report = load_detector_weights(det, path)
    assert report.missing == [] and report.unexpected == []
    assert len(report.loaded) == 32
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in det.state_dict().items())
    bare = tmp_path / "detector.pth"  # a bare state dict of the detector reads the same
    torch.save(src.state_dict(), bare)
    assert load_detector_weights(_detector(7), bare).missing == []


def test_missing_encoder_tensor_is_refused(tmp_path):
    mae = create_pretrain_model("vit_tiny_patch16", target_dim=64, **TINY)
    sd = {k: v for k, v in mae.state_dict().items() if not k.startswith("encoder.blocks.1.mlp")}
    path = tmp_path / "partial.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError, match=r"missing 4: encoder\.blocks\.1\.mlp\.fc1\.bias"):
        load_detector_weights(_detector(), path)


def test_finetuned_file_without_any_norm_is_refused(tmp_path):
    clf = create_encoder("vit_tiny_patch16", num_classes=8, **TINY)
    sd = {k: v for k, v in clf.state_dict().items() if not k.startswith("fc_norm")}
    path = tmp_path / "no_norm.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError, match=r"missing 2: encoder\.norm\.bias, encoder\.norm\.weight"):
        load_detector_weights(_detector(), path)


def test_shape_mismatch_is_refused(tmp_path):
    src = _detector()
    other_head = AVADetector(src.encoder, AVAHead(src.encoder.embed_dim, num_classes=60))
    path = tmp_path / "ava60.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in other_head.state_dict().items()}}, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch for 2 tensor\(s\): head\.fc\.(bias|weight)"):
        load_detector_weights(_detector(), path)
