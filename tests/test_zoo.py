"""Model zoo: names resolve to files in a local cache, verified when a sha256 is known, never downloaded."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch
from smile_testing import TINY, compose_cfg
from test_safe_loading import assert_refused, write_bad_checkpoints

from smile import zoo
from smile.cli.convert import main as convert_main
from smile.models import MODEL_SIZES, create_pretrain_model, read_state_dict
from smile.models.checkpoint import CheckpointError
from smile.train import build_module

URL = "https://example.org/weights/fake_tiny.pth"


@pytest.fixture
def fake_entry(monkeypatch, tmp_path):
    """Register ``zoo:fake_tiny``: a tiny pretraining student saved like an official file in ``tmp/cache``."""
    student = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32)
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "fake_tiny.pth"
    torch.save({"model": student.state_dict()}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = zoo.ZooEntry("fake_tiny", "fake_tiny.pth", URL, "vit_tiny_patch16", "pretrain", 0, 1536, 4, 32,
                         zoo.PRETRAIN_KEYS, digest)  # fmt: skip
    monkeypatch.setitem(zoo.ZOO, "fake_tiny", entry)
    monkeypatch.delenv(zoo.ENV_DIR, raising=False)
    return entry, cache, student


def test_registered_name_resolves_in_the_cache_dir(fake_entry, monkeypatch):
    entry, cache, _ = fake_entry
    assert zoo.resolve("zoo:fake_tiny", cache) == cache / "fake_tiny.pth"
    monkeypatch.setenv(zoo.ENV_DIR, str(cache))
    assert zoo.resolve("zoo:fake_tiny") == cache / "fake_tiny.pth"
    assert zoo.missing_sample_keys(entry, set(read_state_dict(cache / "fake_tiny.pth"))) == []
    assert zoo.resolve("some/dir/last.ckpt", cache) == Path("some/dir/last.ckpt")  # paths pass through


def test_default_cache_dir_is_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv(zoo.ENV_DIR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert zoo.zoo_dir() == tmp_path / ".cache" / "smile" / "zoo"


def test_wrong_sha256_names_both_digests(fake_entry, monkeypatch):
    entry, cache, _ = fake_entry
    wrong = "0" * 64
    monkeypatch.setitem(zoo.ZOO, "fake_tiny", zoo.ZooEntry(**{**entry.__dict__, "sha256": wrong}))
    with pytest.raises(ValueError) as err:
        zoo.resolve("zoo:fake_tiny", cache)
    assert wrong in str(err.value) and entry.sha256 in str(err.value)


def test_missing_file_gives_url_and_exact_path(fake_entry, tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(FileNotFoundError) as err:
        zoo.resolve("zoo:fake_tiny", empty)
    assert URL in str(err.value) and str(empty / "fake_tiny.pth") in str(err.value)


def test_unknown_name_lists_the_known_ones(fake_entry):
    with pytest.raises(ValueError, match="unknown zoo model 'nope'") as err:
        zoo.resolve("zoo:nope")
    assert "fake_tiny" in str(err.value) and "smile_vitb_k400_600e" in str(err.value)


def test_init_from_zoo_name_loads_the_student(fake_entry, tmp_path):
    _, cache, student = fake_entry
    cfg = compose_cfg([*TINY, "model.init_from=zoo:fake_tiny", f"paths.zoo_dir={cache}"], tmp_path / "run")
    module = build_module(cfg)
    for k, v in student.state_dict().items():
        assert torch.equal(module.net.state_dict()[k], v), k


def test_init_from_zoo_name_initialises_a_classifier(fake_entry, tmp_path):
    _, cache, student = fake_entry
    overrides = [*TINY, "model=classifier", "data.num_classes=8", "model.init_from=zoo:fake_tiny"]
    module = build_module(compose_cfg([*overrides, f"paths.zoo_dir={cache}"], tmp_path / "run"))
    own = module.net.state_dict()
    assert torch.equal(own["blocks.1.mlp.fc2.weight"], student.state_dict()["encoder.blocks.1.mlp.fc2.weight"])


def test_registry_entries_are_well_formed():
    assert len({e.filename for e in zoo.ZOO.values()}) == len(zoo.ZOO)
    for name, e in zoo.ZOO.items():
        assert e.name == name and e.url.startswith("https://") and e.model in MODEL_SIZES
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert (e.kind == "finetune") == (e.num_classes > 0) and (e.kind == "pretrain") == (e.target_dim > 0)


@pytest.mark.parametrize("kind", ["random", "truncated", "hostile", "os_class"])
def test_broken_cached_file_is_named_with_the_url(fake_entry, monkeypatch, tmp_path, capsys, kind):
    entry, cache, _ = fake_entry
    monkeypatch.setitem(zoo.ZOO, "fake_tiny", zoo.ZooEntry(**{**entry.__dict__, "sha256": None}))  # unverified
    bad = write_bad_checkpoints(tmp_path / "bad", tmp_path / "pwned")[kind]
    path = cache / "fake_tiny.pth"
    path.write_bytes(bad.read_bytes())
    argv = ["to-official", "zoo:fake_tiny", str(tmp_path / "x.pth"), "--zoo-dir", str(cache)]
    assert convert_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert_refused(err, path)
    assert err.startswith("smile-convert to-official: error: zoo:fake_tiny: ") and URL in err
    cfg = compose_cfg([*TINY, "model.init_from=zoo:fake_tiny", f"paths.zoo_dir={cache}"], tmp_path / "run")
    with pytest.raises(CheckpointError) as raised:
        build_module(cfg)
    assert_refused(str(raised.value), path)
    if kind in ("random", "truncated"):  # visibly broken: refused when the name resolves, with the URL
        with pytest.raises(CheckpointError, match="download it again") as raised:
            zoo.resolve("zoo:fake_tiny", cache)
        assert URL in str(raised.value)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x.pth").exists()
