"""AVA v2.2 spatio-temporal action detection data: readers, a synthetic AVA, clips with boxes, a data module.

See :mod:`smile.data.ava.files` for the formats and the frame-numbering convention,
:mod:`smile.data.ava.synthetic` for the synthetic set, :mod:`smile.data.ava.dataset` for the
items (the batch contract), :mod:`smile.data.ava.transforms` for the box-aware crops,
:mod:`smile.data.ava.frames` for reading clip frames (JPEG folders or videos),
:mod:`smile.data.ava.color` for the training HSV jitter, :mod:`smile.data.ava.datamodule` for the
LightningDataModule and :mod:`smile.data.ava.check` for ``smile-data check-ava``. The readers and
the synthetic set import eagerly; the rest on first use, so tools that only read files do not pay
for importing torchvision or Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

from smile.data.ava.files import (
    DEFAULT_PROPOSAL_SCORE,
    FPS,
    NUM_CLASSES,
    WINDOW_START_S,
    AvaKeyframe,
    clip_frame_paths,
    count_frames,
    frame_path,
    keyframe_index,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
)
from smile.data.ava.synthetic import SyntheticAva, write_synthetic_ava

_LAZY = {
    "AvaClipDataset": "smile.data.ava.dataset",
    "collate_ava": "smile.data.ava.dataset",
    "AvaDataModule": "smile.data.ava.datamodule",
    "AvaEvalFiles": "smile.data.ava.datamodule",
    "AvaTestTransform": "smile.data.ava.transforms",
    "AvaTrainTransform": "smile.data.ava.transforms",
    "AvaCheckReport": "smile.data.ava.check",
    "check_ava": "smile.data.ava.check",
}

__all__ = [
    "DEFAULT_PROPOSAL_SCORE",
    "FPS",
    "NUM_CLASSES",
    "WINDOW_START_S",
    "AvaKeyframe",
    "SyntheticAva",
    "clip_frame_paths",
    "count_frames",
    "frame_path",
    "keyframe_index",
    "read_annotations",
    "read_excluded",
    "read_label_map",
    "read_proposals",
    "write_synthetic_ava",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'smile.data.ava' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
