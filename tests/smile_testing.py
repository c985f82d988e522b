"""Helpers shared by the tests: compose the project's Hydra config with tiny overrides."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from smile.train import CONFIG_DIR

# Smallest useful run: 4 frames of 32 px (2x2x2 tokens), CSV logger only, no progress bar.
TINY = [
    "video=tiny",
    "model/encoder=vit_tiny",
    "trainer=cpu",
    "data.num_workers=0",
    "~callbacks.progress_bar",
]


def compose_cfg(overrides: list[str], output_dir: str | Path, config_name: str = "train") -> DictConfig:
    """The config ``python train.py <overrides>`` would run, writing into ``output_dir``."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg
