"""Where a labelled dataset's videos come from: a list file, a dataset index or in-memory records.

:class:`~smile.data.datasets.classify.VideoClassificationDataset` accepts all three; this module
turns each into the same :class:`VideoSource` (paths, labels, ids and, when the source knows them,
the class names with the file they come from), so the dataset and the data module's class check
(:mod:`smile.data.classes`) do not care which one the config gave.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smile.data.indexes import DatasetIndex, list_classes
from smile.data.listfile import read_video_list

Record = Any  # (path, label[, video_id]) or an object with .path, .label[, .video_id]


@dataclass
class VideoSource:
    """A dataset's videos, as every source kind gives them.

    ``class_names`` is None for bare records (they carry labels only); ``classes_file`` names the
    annotation file the names come from, for messages.
    """

    name: str
    paths: list[str]
    labels: list[int]
    video_ids: list[str]
    class_names: list[str] | None = None
    classes_file: str = ""


def video_id_of(path: str) -> str:
    """The reference's id: the file name up to its first dot (``a/b/xyz.mp4`` -> ``xyz``)."""
    return os.path.basename(path).split(".")[0]


def _read_records(records: Sequence[Record], root: str | os.PathLike | None) -> tuple[list[str], list[int], list[str]]:
    """Paths (relative ones joined to ``root``), labels and ids of in-memory records."""
    paths, labels, ids = [], [], []
    for rec in records:
        if isinstance(rec, (tuple, list)):
            path, label, vid = rec[0], rec[1], (rec[2] if len(rec) > 2 else None)
        else:
            path, label, vid = rec.path, rec.label, getattr(rec, "video_id", None)
        path = os.fspath(path)
        if root is not None and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(os.fspath(root), path))
        paths.append(path)
        labels.append(int(label))
        ids.append(str(vid) if vid is not None else video_id_of(path))
    if not paths:
        raise ValueError("no video records given")
    return paths, labels, ids


def read_source(
    source: str | os.PathLike | DatasetIndex | Sequence[Record], root: str | os.PathLike | None, config_key: str
) -> VideoSource:
    """A list file (class names from ``classes.txt`` beside it, else ``class_<i>``), an index or records."""
    if isinstance(source, (str, os.PathLike)):
        paths, labels = read_video_list(source, root, config_key)
        names, names_file = list_classes(source, labels)
        return VideoSource(os.fspath(source), paths, labels, [video_id_of(p) for p in paths], names, names_file)
    if isinstance(source, DatasetIndex):
        paths, labels, ids = _read_records(source.records, root)
        return VideoSource(f"<{len(paths)} records>", paths, labels, ids, list(source.classes), source.classes_file)
    paths, labels, ids = _read_records(source, root)
    return VideoSource(f"<{len(paths)} records>", paths, labels, ids)
