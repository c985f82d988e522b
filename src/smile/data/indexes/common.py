"""Shared pieces of the dataset readers: records, the index, split names, and one-pass folder scans."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("list", "k400", "ssv2", "ucf101", "hmdb51")
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi")  # preference order when a stem has several files
CLASSES_FILE = "classes.txt"
_SPLIT_DIRS = {"train": ("train",), "val": ("val", "validate", "validation", "valid"), "test": ("test",)}
_SPLIT_ALIASES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
_SHOW_MISSING = 5


@dataclass(frozen=True)
class VideoRecord:
    """One video: absolute ``path``, integer ``label`` (-1 = unknown) and the dataset's ``video_id``."""

    path: str
    label: int
    video_id: str


@dataclass
class DatasetIndex:
    """A split's records and class names, plus the annotated videos that were not found on disk.

    ``classes_file`` is the annotation file (or folder) the names come from, so that a class count
    that disagrees with the data can name it (``data.num_classes=101 but .../classInd.txt lists 4``).
    """

    records: list[VideoRecord]
    classes: list[str]
    missing: list[str] = field(default_factory=list)
    classes_file: str = ""

    def summary(self) -> str:
        """One-line counts: videos, classes, dropped (with the first few missing ids)."""
        text = f"{len(self.records)} videos, {len(self.classes)} classes, {len(self.missing)} dropped (missing files)"
        if self.missing:
            more = len(self.missing) - _SHOW_MISSING
            text += ": " + ", ".join(self.missing[:_SHOW_MISSING]) + (f", ... and {more} more" if more > 0 else "")
        return text


def _canonical_split(split: str, allowed: Iterable[str]) -> str:
    name = _SPLIT_ALIASES.get(split.lower(), split.lower())
    if name not in allowed:
        raise ValueError(f"split {split!r} is not one of {sorted(set(allowed))} for this format")
    return name


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected {what}")
    return path


def _scan(folder: Path) -> tuple[list[os.DirEntry], list[os.DirEntry]]:
    """(files, subfolders) of ``folder``, both empty if it does not exist."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    return [e for e in entries if e.is_file()], [e for e in entries if e.is_dir()]


def _video_files(
    tops: Iterable[Path], skip_dirs: Iterable[str] = (), key: Callable[[str], str] = str
) -> dict[str, str]:
    """``key(stem) -> path`` of the videos in each top folder and its direct subfolders.

    Earlier tops win, flat files before subfolders, and :data:`VIDEO_EXTS` order among extensions.
    """
    skip = {s.lower() for s in skip_dirs}
    found: dict[str, str] = {}
    for top in tops:
        files, dirs = _scan(top)
        subdirs = sorted((d for d in dirs if d.name.lower() not in skip), key=lambda d: d.name)
        groups = [files] + [_scan(Path(d.path))[0] for d in subdirs]
        for group in groups:
            named = [(os.path.splitext(e.name), e.path) for e in group]
            videos = [(stem, ext.lower(), p) for (stem, ext), p in named if ext.lower() in VIDEO_EXTS]
            for stem, _, path in sorted(videos, key=lambda v: VIDEO_EXTS.index(v[1])):
                found.setdefault(key(stem), os.path.abspath(path))
    return found


Row = tuple[str, tuple[str, ...], int]  # (video_id, keys to look the file up by, label)


def _attach(rows: Iterable[Row], files: dict[str, str]) -> tuple[list[VideoRecord], list[str]]:
    """Records for ``(video_id, lookup keys, label)`` rows whose file exists, and the missing ids."""
    records, missing = [], []
    for video_id, keys, label in rows:
        path = next((files[k] for k in keys if k in files), None)
        if path is None:
            missing.append(video_id)
        else:
            records.append(VideoRecord(path, label, video_id))
    return records, missing
