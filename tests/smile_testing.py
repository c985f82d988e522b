"""Helpers shared by the tests: compose the project's Hydra config with tiny overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


BRIGHTNESS_STEP = 5
WIDTH, HEIGHT, FPS = 64, 48, 25


def write_video(path: Path, num_frames: int, codec: str = "mpeg4", width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Encode ``num_frames`` flat frames (value ``BRIGHTNESS_STEP * k``) with PyAV.

    Frame ``k`` is flat grey ``BRIGHTNESS_STEP * k``, so a decoded frame's index can be read back
    from its mean (codecs keep flat frames within a few levels) whatever crop or resize applied.
    """
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000  # generous for tiny frames: keeps flat frames within ~2 levels
        for k in range(num_frames):
            rgb = np.full((height, width, 3), BRIGHTNESS_STEP * k, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
