"""Datasets, decoding, sampling, transforms and the LightningDataModule.

Names are imported on first use, so command-line tools that only need decoding or indexing
(``smile-data``) do not pay for importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VideoDataModule": "smile.data.datamodule",
    "normalize_video": "smile.data.datamodule",
    "SyntheticVideoDataset": "smile.data.datasets.synthetic",
    "VideoListDataset": "smile.data.datasets.list",
    "VideoDecodeError": "smile.data.decoding",
    "VideoInfo": "smile.data.decoding",
    "read_clip": "smile.data.decoding",
    "read_frames": "smile.data.decoding",
    "video_info": "smile.data.decoding",
    "ResumableSampler": "smile.data.sampler",
    "pretrain_indices": "smile.data.sampling",
    "MultiScaleCrop": "smile.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'smile.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
