"""``smile-convert`` through files: our .ckpt -> official .pth -> ours, and -> Hugging Face -> ours."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import torch
from smile_testing import TINY, compose_cfg
from test_safe_loading import assert_refused, write_bad_checkpoints

from smile.cli.convert import main
from smile.models import create_encoder, create_pretrain_model
from smile.train import build_module

GEOM = dict(num_frames=4, img_size=32)


def lightning_ckpt(path, module, **extra):
    """What Lightning writes for ``module`` (weights under ``state_dict``, hyper-parameters beside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), **extra}, path)
    return path


@pytest.fixture
def pretrain_ckpt(tmp_path):
    """A real PretrainLitModule's checkpoint (``net.*`` keys, teacher excluded) in ``run/checkpoints``."""
    module = build_module(compose_cfg(TINY, tmp_path / "run"))
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return lightning_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt", module), module.net.eval()


def test_to_official_and_back_through_files(tmp_path, pretrain_ckpt, capsys):
    ckpt, student = pretrain_ckpt
    official, ours = tmp_path / "official.pth", tmp_path / "ours.pth"
    assert main(["to-official", str(ckpt), str(official)]) == 0
    assert "official pretrain layout" in capsys.readouterr().out
    saved = torch.load(official, weights_only=True)
    assert set(saved) == {"model"} and set(saved["model"]) == set(student.state_dict())
    assert main(["from-official", str(official), str(ours)]) == 0
    fresh = create_pretrain_model("vit_tiny_patch16", **GEOM).eval()
    fresh.load_state_dict(torch.load(ours, weights_only=True), strict=True)
    video, mask = torch.randn(1, 3, 4, 32, 32), torch.tensor([[True] * 6 + [False] * 2])
    assert torch.equal(fresh(video, mask), student(video, mask))
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary behind


def test_to_official_exports_ema_weights_when_asked(tmp_path):
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **GEOM)
    ema = {k: v + 1 for k, v in clf.state_dict().items()}
    src = tmp_path / "clf.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in clf.state_dict().items()}, "ema_state_dict": ema}, src)
    assert main(["to-official", str(src), str(tmp_path / "ema.pth"), "--ema"]) == 0
    assert torch.equal(torch.load(tmp_path / "ema.pth")["model"]["head.bias"], ema["head.bias"])
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    assert main(["to-official", str(tmp_path / "plain.ckpt"), str(tmp_path / "x.pth"), "--ema"]) == 1


@pytest.mark.parametrize("saved_config", [".hydra/config.yaml", "csv/version_0/hparams.yaml"])
def test_to_hf_reads_geometry_from_the_run_config_and_converts_back(tmp_path, pretrain_ckpt, saved_config):
    pytest.importorskip("transformers")
    ckpt, student = pretrain_ckpt
    run_cfg = ckpt.parents[1] / saved_config
    run_cfg.parent.mkdir(parents=True)
    run_cfg.write_text(  # as Hydra saves it: unresolved, with a resolver only a Hydra run knows
        "paths: {output_dir: '${hydra:runtime.output_dir}'}\nsize: 32\n"
        "video: {num_frames: 4, img_size: '${size}'}\nmodel: {encoder: {name: vit_tiny_patch16}}\n"
    )
    assert main(["to-hf", str(ckpt), str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["num_frames"], config["image_size"], config["num_attention_heads"]) == (4, 32, 2)
    assert main(["from-hf", str(tmp_path / "hf"), str(tmp_path / "enc.pth")]) == 0
    back = torch.load(tmp_path / "enc.pth", weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in student.encoder.state_dict().items())


def test_to_hf_without_geometry_names_the_flags(tmp_path, capsys):
    pytest.importorskip("transformers")
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **GEOM)
    torch.save({"model": clf.state_dict()}, tmp_path / "ft.pth")
    assert main(["to-hf", str(tmp_path / "ft.pth"), str(tmp_path / "hf")]) == 1
    err = capsys.readouterr().err
    assert "--num-frames" in err and "--img-size" in err and "--num-heads" not in err  # heads: from the width
    argv = ["to-hf", str(tmp_path / "ft.pth"), str(tmp_path / "hf"), "--num-frames", "4", "--img-size", "32"]
    assert main(argv) == 0
    assert len(json.loads((tmp_path / "hf" / "config.json").read_text())["id2label"]) == 3


def test_missing_transformers_says_how_to_install(tmp_path, monkeypatch, capsys):
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **GEOM)
    torch.save(clf.state_dict(), tmp_path / "ft.pth")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    argv = ["to-hf", str(tmp_path / "ft.pth"), str(tmp_path / "hf"), "--num-frames", "4", "--img-size", "32"]
    assert main(argv) == 1
    assert "pip install 'smile[hf]'" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


def test_zoo_listing_and_missing_zoo_file(tmp_path, capsys):
    assert main(["zoo", "--zoo-dir", str(tmp_path)]) == 0
    assert "zoo:smile_vitb_k400_600e" in capsys.readouterr().out
    assert main(["to-official", "zoo:smile_vitb_k400_600e", str(tmp_path / "x.pth"), "--zoo-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "huggingface.co/fmthoker/SMILE" in err and str(tmp_path) in err


def test_to_hf_reads_geometry_from_official_args(tmp_path):
    pytest.importorskip("transformers")
    clf = create_encoder("vit_tiny_patch16", num_classes=3, **GEOM)
    args = argparse.Namespace(num_frames=4, input_size=32, model="vit_tiny_patch16")
    torch.save({"model": clf.state_dict(), "args": args}, tmp_path / "checkpoint-best.pth")
    assert main(["to-hf", str(tmp_path / "checkpoint-best.pth"), str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["num_frames"], config["image_size"], config["num_attention_heads"]) == (4, 32, 2)


@pytest.mark.parametrize("saved_config", [".hydra/config.yaml", "csv/version_0/hparams.yaml"])
def test_hostile_run_config_beside_the_checkpoint_is_refused(tmp_path, pretrain_ckpt, capsys, saved_config):
    ckpt, _ = pretrain_ckpt
    sentinel = tmp_path / "precious.txt"
    sentinel.write_text("keep me")
    run_cfg = ckpt.parents[1] / saved_config
    run_cfg.parent.mkdir(parents=True)
    run_cfg.write_text(
        "video: {num_frames: 4, img_size: 32}\n"
        f"model: {{encoder: {{_target_: builtins.open, file: {sentinel}, mode: w, name: vit_tiny_patch16}}}}\n"
    )
    assert main(["to-hf", str(ckpt), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"smile-convert to-hf: error: {run_cfg}: `model.encoder._target_: builtins.open` is refused")
    assert "\n" not in err
    assert sentinel.read_text() == "keep me" and not (tmp_path / "hf").exists()


@pytest.mark.parametrize("kind", ["random", "truncated", "hostile", "os_class"])
def test_every_verb_refuses_bad_input_files_with_exit_2(tmp_path, capsys, kind):
    bad = write_bad_checkpoints(tmp_path / "bad", tmp_path / "pwned")[kind]
    hf_dir = tmp_path / "hf_in"
    hf_dir.mkdir()
    (hf_dir / "pytorch_model.bin").write_bytes(bad.read_bytes())
    out = tmp_path / "out.pth"
    geometry = ["--num-frames", "4", "--img-size", "32"]
    for argv, named in (
        (["to-official", str(bad), str(out)], bad),
        (["from-official", str(bad), str(out)], bad),
        (["to-hf", str(bad), str(tmp_path / "hf"), *geometry], bad),
        (["from-hf", str(hf_dir), str(out)], hf_dir / "pytorch_model.bin"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"smile-convert {argv[0]}: error: "), err
        assert_refused(err, named)
    assert not out.exists() and not (tmp_path / "hf").exists() and not (tmp_path / "pwned").exists()


def test_from_hf_refuses_a_broken_safetensors_file(tmp_path, capsys):
    pytest.importorskip("safetensors")
    hf_dir = tmp_path / "hf_in"
    hf_dir.mkdir()
    (hf_dir / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" * 4)
    assert main(["from-hf", str(hf_dir), str(tmp_path / "out.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{hf_dir / 'model.safetensors'}: unreadable (" in err and "expected a safetensors file" in err
    assert "\n" not in err and not (tmp_path / "out.pth").exists()
