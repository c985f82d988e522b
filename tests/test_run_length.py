"""Run length: whichever of trainer.max_steps / trainer.max_epochs is set decides, and the log says which."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from smile.checks import ConfigError
from smile.run_length import resolve_run_length, stop_reason
from smile.train import setup

# 32 clips / batch 8 = 4 steps per epoch: a step limit above 4 was cut to one epoch before.
SHORT_EPOCHS = [
    "data.train_dataset.num_samples=32",
    "data.batch_size=8",
    "callbacks.checkpoint.every_n_train_steps=100",
]


@pytest.mark.parametrize(
    ("overrides", "max_epochs", "max_steps"),
    [
        ([], 1, -1),  # neither: default_epochs
        (["default_epochs=3"], 3, -1),
        (["trainer.max_steps=20"], -1, 20),  # only steps: epochs unbounded
        (["trainer.max_epochs=2"], 2, -1),
        (["trainer.max_epochs=2", "trainer.max_steps=20"], 2, 20),  # both: Lightning stops at the first
        (["debug=fast"], -1, 5),
        (["debug=limit"], 3, -1),
        (["experiment=demo"], 32, -1),
    ],
)
def test_the_limit_that_is_set_decides(tiny_cfg, overrides, max_epochs, max_steps):
    cfg = tiny_cfg(*overrides)
    resolve_run_length(cfg)
    assert (cfg.trainer.max_epochs, cfg.trainer.max_steps) == (max_epochs, max_steps)
    resolve_run_length(cfg)  # idempotent: a second setup of the same config changes nothing
    assert (cfg.trainer.max_epochs, cfg.trainer.max_steps) == (max_epochs, max_steps)


def test_the_default_length_lives_in_the_config(tiny_cfg):
    cfg = tiny_cfg()
    assert cfg.trainer.max_epochs is None and cfg.trainer.max_steps == -1 and cfg.default_epochs == 1
    with pytest.raises(ConfigError, match=r"default_epochs=0: must be an int >= 1"):
        resolve_run_length(tiny_cfg("default_epochs=0"))


def _fit(cfg, caplog):
    r = setup(cfg)
    with caplog.at_level(logging.INFO, logger="smile.train"):
        r.fit()
    return r.trainer, [rec.getMessage() for rec in caplog.records if rec.message.startswith("stopped")]


def test_max_steps_runs_that_many_steps_across_epochs(tiny_cfg, caplog):
    trainer, lines = _fit(tiny_cfg(*SHORT_EPOCHS, "trainer.max_steps=10"), caplog)
    assert trainer.global_step == 10 and trainer.estimated_stepping_batches == 10  # the lr schedule's length
    assert lines == ["stopped by trainer.max_steps=10 after 10 steps, 3 epochs (trainer.max_epochs=-1)"]


def test_max_epochs_runs_whole_epochs(tiny_cfg, caplog):
    trainer, lines = _fit(tiny_cfg(*SHORT_EPOCHS, "trainer.max_epochs=2"), caplog)
    assert trainer.global_step == 8 and trainer.estimated_stepping_batches == 8
    assert lines == ["stopped by trainer.max_epochs=2 after 8 steps, 2 epochs (trainer.max_steps=-1)"]


def test_both_limits_stop_at_the_first_reached(tiny_cfg, caplog):
    trainer, lines = _fit(tiny_cfg(*SHORT_EPOCHS, "trainer.max_epochs=2", "trainer.max_steps=6"), caplog)
    assert trainer.global_step == 6
    assert lines == ["stopped by trainer.max_steps=6 after 6 steps, 2 epochs (trainer.max_epochs=2)"]


def test_stop_reason_names_interruptions_and_early_stops():
    loop = {"max_steps": 20, "max_epochs": -1, "global_step": 7, "current_epoch": 1}
    assert stop_reason(SimpleNamespace(**loop, interrupted=True)) == (
        "interrupted after 7 steps, 1 epochs (trainer.max_steps=20, trainer.max_epochs=-1)"
    )
    assert stop_reason(SimpleNamespace(**loop, interrupted=False)) == (
        "stopped early after 7 steps, 1 epochs, before trainer.max_steps=20 and trainer.max_epochs=-1"
    )
