"""Our models as Hugging Face ``transformers`` VideoMAE: same logits, same tokens, and back."""

from __future__ import annotations

import json

import pytest
import torch
from test_convert import perturb, tube_mask

from smile.cli.convert import read_hf_dir, write_hf
from smile.models import create_encoder, create_pretrain_model
from smile.models.convert import from_hf, hf_config, match_hf_names, to_hf

transformers = pytest.importorskip("transformers")

TINY = dict(num_frames=4, img_size=32)
GEOMETRY = dict(num_frames=4, img_size=32, num_heads=2)


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))  # [B, C, T, H, W]


def test_classifier_exports_to_video_classification_with_same_logits(tmp_path, video):
    clf = perturb(create_encoder("vit_tiny_patch16", num_classes=5, head_init_scale=1.0, **TINY))
    write_hf(clf.state_dict(), GEOMETRY, tmp_path / "hf")
    assert {p.name for p in (tmp_path / "hf").iterdir()} == {"config.json", "model.safetensors"}
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["VideoMAEForVideoClassification"]
    assert (config["num_frames"], config["image_size"], config["num_attention_heads"]) == (4, 32, 2)
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        ours = clf(video)  # [B, 5]
        theirs = hf(pixel_values=video.transpose(1, 2)).logits  # HF takes [B, T, C, H, W]
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)  # HF's fc_norm has eps 1e-5, ours 1e-6
        tokens = hf.videomae(pixel_values=video.transpose(1, 2)).last_hidden_state  # [B, N, D], no final norm
        torch.testing.assert_close(tokens, clf.forward_features(video), atol=1e-5, rtol=0)


def test_pretraining_encoder_exports_to_videomae_model_with_same_tokens(tmp_path, video):
    student = perturb(create_pretrain_model("vit_tiny_patch16", **TINY))
    write_hf(student.state_dict(), GEOMETRY, tmp_path / "hf")
    hf = transformers.VideoMAEModel.from_pretrained(tmp_path / "hf").eval()
    assert not hf.config.use_mean_pooling and hf.layernorm is not None  # our encoder.norm
    mask = tube_mask(2, student.num_patches, 6)
    with torch.no_grad():
        for m in (None, mask):  # all tokens, and the visible tokens of a masked clip
            theirs = hf(pixel_values=video.transpose(1, 2), bool_masked_pos=m).last_hidden_state
            torch.testing.assert_close(theirs, student.encoder.forward_features(video, m), atol=1e-5, rtol=0)


def test_saved_directory_converts_back_exactly(tmp_path):
    clf = perturb(create_encoder("vit_tiny_patch16", num_classes=5, **TINY))
    write_hf(clf.state_dict(), GEOMETRY, tmp_path / "hf")
    back = from_hf(read_hf_dir(tmp_path / "hf"))
    assert set(back) == set(clf.state_dict())
    for k, v in clf.state_dict().items():
        assert torch.equal(back[k], v), k


def test_encoder_round_trip_and_position_tables_match():
    student = perturb(create_pretrain_model("vit_tiny_patch16", **TINY))
    enc = student.encoder.state_dict()
    back = from_hf(to_hf(student.state_dict()))
    assert set(back) == set(enc) and all(torch.equal(back[k], v) for k, v in enc.items())
    hf = transformers.VideoMAEModel(transformers.VideoMAEConfig(**hf_config(student.state_dict(), **GEOMETRY)))
    assert torch.equal(hf.embeddings.position_embeddings, student.encoder.pos_embed)  # both fixed sinusoids


def test_qkv_is_split_into_query_key_value_without_key_bias():
    clf = perturb(create_encoder("vit_tiny_patch16", num_classes=2, **TINY))
    hf = to_hf(clf.state_dict())
    qkv = clf.state_dict()["blocks.1.attn.qkv.weight"]  # [3D, D]
    layer = "videomae.encoder.layer.1.attention.attention"
    assert torch.equal(hf[f"{layer}.key.weight"], qkv[32:64])
    assert torch.equal(hf[f"{layer}.query.bias"], clf.state_dict()["blocks.1.attn.q_bias"])
    assert f"{layer}.key.bias" not in hf


def test_legacy_bias_names_follow_the_installed_model():
    sd = {"encoder.layer.0.attention.attention.query.bias": torch.zeros(2), "layernorm.weight": torch.ones(2)}
    legacy = {"encoder.layer.0.attention.attention.q_bias", "layernorm.weight"}
    assert set(match_hf_names(sd, legacy)) == legacy
    assert set(match_hf_names(sd, set(sd))) == set(sd)
    assert set(from_hf({"layernorm.weight": torch.ones(2)})) == {"norm.weight"}
