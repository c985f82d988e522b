"""AVA v2.2 spatio-temporal action detection data: readers of the published files and a synthetic AVA.

See :mod:`smile.data.ava.files` for the formats and the frame-numbering convention, and
:mod:`smile.data.ava.synthetic` for the synthetic set.
"""

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
]
