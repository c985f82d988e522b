"""The `debug/` group: every file composes over `train.yaml` (and over an experiment) and sets what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import OmegaConf
from smile_testing import TINY, compose_cfg

from smile.build import CONFIG_DIR, build_trainer

DEBUG = sorted(p.stem for p in Path(CONFIG_DIR, "debug").glob("*.yaml"))


def test_the_debug_group_has_the_four_modes():
    assert DEBUG == ["fast", "limit", "overfit", "profile"]


@pytest.mark.parametrize("name", DEBUG)
def test_each_debug_file_states_its_command_and_starts_fresh(name, tmp_path):
    header = Path(CONFIG_DIR, "debug", f"{name}.yaml").read_text().splitlines()[:3]
    assert header[0] == "# @package _global_"
    assert any(f"`python train.py debug={name}`" in line for line in header), header
    cfg = compose_cfg([*TINY, f"debug={name}"], tmp_path)
    assert cfg.resume is False  # a debug run never silently reloads a finished run


def test_fast_runs_five_steps(tmp_path):
    cfg = compose_cfg([*TINY, "debug=fast"], tmp_path)
    assert (cfg.trainer.max_steps, cfg.trainer.log_every_n_steps, cfg.data.batch_size) == (5, 1, 2)


def test_overfit_repeats_a_few_batches_for_many_epochs(tmp_path):
    cfg = compose_cfg([*TINY, "debug=overfit"], tmp_path)
    assert (cfg.trainer.overfit_batches, cfg.trainer.max_epochs, cfg.trainer.max_steps) == (2, 40, -1)
    assert cfg.callbacks.media.every_n_steps == 0
    trainer = build_trainer(cfg, callbacks=[], logger=False, enable_checkpointing=False)
    assert trainer.overfit_batches == 2 and trainer.limit_train_batches == 2 and trainer.max_epochs == 40


def test_limit_takes_a_fraction_of_each_epoch(tmp_path):
    cfg = compose_cfg([*TINY, "debug=limit"], tmp_path)
    t = cfg.trainer
    assert (t.limit_train_batches, t.limit_val_batches, t.max_epochs, t.max_steps) == (0.1, 0.2, 3, -1)
    # the default synthetic set (256 clips, batch 8) has 32 batches: 10 % is 3 steps per epoch
    assert int(cfg.data.train_dataset.num_samples / cfg.data.batch_size * t.limit_train_batches) == 3


def test_profile_attaches_the_simple_profiler(tmp_path):
    cfg = compose_cfg([*TINY, "debug=profile"], tmp_path)
    assert cfg.trainer.max_steps == 20
    trainer = build_trainer(cfg, callbacks=[], logger=False, enable_checkpointing=False)
    assert isinstance(trainer.profiler, SimpleProfiler)
    assert Path(trainer.profiler.dirpath) == tmp_path and trainer.profiler.filename == "profile"


def _leaves(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {k: v for key, sub in node.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


@pytest.mark.parametrize("name", DEBUG)
def test_debug_overrides_an_experiment(name, tmp_path):
    """`debug` comes after `experiment` in the defaults list: every value of the debug file wins over the demo's."""
    cfg = compose_cfg(["experiment=demo", "trainer=cpu", f"debug={name}"], tmp_path)
    composed = _leaves(OmegaConf.to_container(cfg, resolve=False))
    wanted = _leaves(OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR, "debug", f"{name}.yaml"))))
    assert {k: composed[k] for k in wanted} == wanted
    assert cfg.name == "demo" and cfg.data.train_dataset.scene == "pan"  # the rest is still the demo
