"""Entry points: one split of any supported format as a :class:`DatasetIndex`, and writing a list."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from pathlib import Path

from smile.data.indexes.common import CLASSES_FILE, FORMATS, DatasetIndex, VideoRecord
from smile.data.indexes.readers import _read_hmdb51, _read_k400, _read_list, _read_ssv2, _read_ucf101
from smile.data.listfile import CSV_HEADER
from smile.data.paths import check_folder

log = logging.getLogger("smile.data.indexes")  # the package's logger, as before the split into modules


_READERS: dict[str, Callable[[Path, Path, str, int], DatasetIndex]] = {
    "list": _read_list,
    "k400": _read_k400,
    "ssv2": _read_ssv2,
    "ucf101": _read_ucf101,
    "hmdb51": _read_hmdb51,
}


def index_dataset(
    format: str,
    root: str | os.PathLike,
    annotations: str | os.PathLike | None = None,
    split: str = "train",
    fold: int = 1,
) -> DatasetIndex:
    """Read one split of a dataset in its published layout (see the :mod:`smile.data.indexes` docstring).

    The one entry point for every user: ``smile-data index`` writes its records and classes to a
    list, and the dataset configs (``configs/data/k400.yaml`` ...) hand the whole index to
    :class:`~smile.data.datasets.classify.VideoClassificationDataset`. Missing videos are logged
    and dropped (:attr:`DatasetIndex.missing` names them).

    Args:
        format: One of :data:`FORMATS`.
        root: Folder of the videos (for ``list``: the list file, or the base of relative paths).
        annotations: Folder of the annotation files (default ``root``; for ``list``: the list file).
        split: ``train``, ``val`` (alias ``validate``) or ``test``; what each means per format above.
        fold: Official split number for ``ucf101`` and ``hmdb51`` (1-3).

    Raises:
        FileNotFoundError: An annotation file is missing (the message says what it should hold).
        ValueError: Unknown format or split, or annotations that contradict each other.
    """
    if format not in _READERS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if format in ("ucf101", "hmdb51") and not 1 <= int(fold) <= 3:
        raise ValueError(f"fold must be 1, 2 or 3, got {fold}")
    root = Path(root).expanduser()
    ann = Path(annotations).expanduser() if annotations is not None else root
    if format != "list":  # a list's root may be the list file itself
        check_folder(root, "data.source.root (smile-data --root)")
        check_folder(ann, "data.source.annotations (smile-data --annotations)")
    index = _READERS[format](root, ann, split, int(fold))
    if index.missing:
        log.warning("%s %s: %s", format, split, index.summary())
    return index


def _write_classes(path: Path, classes: list[str]) -> None:
    """Write ``classes.txt``; refuse to replace one that names other classes (labels would disagree)."""
    text = "".join(f"{name}\n" for name in classes)
    if path.is_file() and path.read_text(encoding="utf-8") != text:
        raise ValueError(
            f"{path} already exists with other class names; lists in one folder share it so that their labels "
            f"agree. Delete it or write this list into another folder."
        )
    path.write_text(text, encoding="utf-8")


def write_list(records: list[VideoRecord], out: str | os.PathLike, classes: list[str] | None = None) -> Path:
    """Write ``<abs path> <label>`` lines (a ``path,label`` CSV if any path has a space).

    Class names go to ``classes.txt`` in the same folder, shared by the folder's train/val/test
    lists (where :func:`index_dataset` with ``format="list"`` looks for them).

    Raises:
        ValueError: No records, a path with a line break, or a conflicting ``classes.txt``.
    """
    out = Path(out)
    if not records:
        raise ValueError(f"no videos to write to {out}")
    rows = [(os.path.abspath(r.path), r.label) for r in records]
    if any("\n" in p or "\r" in p for p, _ in rows):
        raise ValueError("video paths with line breaks cannot be written to a list")
    out.parent.mkdir(parents=True, exist_ok=True)
    if classes:
        _write_classes(out.parent / CLASSES_FILE, list(classes))
    with open(out, "w", encoding="utf-8", newline="") as f:
        if any(" " in p for p, _ in rows):
            f.write(CSV_HEADER + "\n")
            csv.writer(f, lineterminator="\n").writerows(rows)
        else:
            f.writelines(f"{p} {label}\n" for p, label in rows)
    return out
