"""Video indexes from each published dataset layout, all as one ``list[VideoRecord]`` (SPEC §2.1, §7.3).

Every reader returns the same thing: records ``(path, label, video_id)`` and the class names
(``classes[label]``). :func:`write_list` turns them into the ``<path> <label>`` list that
:class:`~smile.data.datasets.list.VideoListDataset` and the finetuning datasets read.

Formats (``annotations`` defaults to ``root``):

* ``list``: an existing VideoMAE/SMILE list (``<path> <label>`` or ``path,label`` CSV), read with
  :func:`~smile.data.datasets.list.read_video_list`. ``annotations`` (or ``root``) is the list file,
  or a folder holding ``<split>.csv``; a directory ``root`` is what relative paths resolve against.
  Class names come from ``classes.txt`` beside the list, else ``class_<i>``.
* ``k400`` (and K600/K700/Mini-Kinetics-200): ``<annotations>/<split>.csv`` (``validate.csv`` and
  ``val.csv`` both serve ``val``) with columns ``label,youtube_id,time_start,time_end,split``
  (extra columns ignored; a test CSV without ``label`` gives label -1). The video is
  ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (else ``<youtube_id>.<ext>``), flat or in class
  folders (any spelling: every subfolder is scanned once) under ``<root>/<split>/`` or ``<root>/``.
  Labels index the sorted class names of ``train.csv`` when it exists, so that train, val and test
  agree, else of the split's own CSV.
* ``ssv2``: ``something-something-v2-labels.json`` (template -> index) and ``-train.json`` /
  ``-validation.json`` / ``-test.json``; the class is the template without ``[]``; videos are
  ``<root>/<id>.webm`` (or another video extension). The test json has no templates: label -1.
* ``ucf101``: ``classInd.txt``, ``trainlist0<fold>.txt``, ``testlist0<fold>.txt`` (``val`` = test);
  label = classInd index - 1; class and folder names match case-insensitively
  (``HandstandPushups`` vs ``HandStandPushups``).
* ``hmdb51``: ``<class>_test_split<fold>.txt`` (in ``testTrainMulti_7030_splits/`` or directly in
  ``annotations``), lines ``<name>.avi <flag>``: 1 = train, 2 = test (also ``val``), 0 = unused.
  Classes sorted by name; videos in ``<root>/<class>/<name>.avi``.

Annotated videos whose file is absent are dropped and reported (:attr:`DatasetIndex.missing`),
never fatal: real Kinetics copies miss a few percent. Folders are listed once with ``os.scandir``,
never stat'ed per record.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from smile.data.datasets.list import CSV_HEADER, read_video_list

log = logging.getLogger(__name__)

FORMATS = ("list", "k400", "ssv2", "ucf101", "hmdb51")
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi")  # preference order when a stem has several files
CLASSES_FILE = "classes.txt"
_SPLIT_DIRS = {"train": ("train",), "val": ("val", "validate", "validation", "valid"), "test": ("test",)}
_SPLIT_ALIASES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": "test"}
_SHOW_MISSING = 5
_K400_HEADER = "label,youtube_id,time_start,time_end,split"


@dataclass(frozen=True)
class VideoRecord:
    """One video: absolute ``path``, integer ``label`` (-1 = unknown) and the dataset's ``video_id``."""

    path: str
    label: int
    video_id: str


@dataclass
class DatasetIndex:
    """A split's records and class names, plus the annotated videos that were not found on disk."""

    records: list[VideoRecord]
    classes: list[str]
    missing: list[str] = field(default_factory=list)

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
            videos = [(os.path.splitext(e.name), e.path) for e in group]
            videos = [(stem, ext.lower(), p) for (stem, ext), p in videos if ext.lower() in VIDEO_EXTS]
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


# --- list -------------------------------------------------------------------------------------


def _list_classes(list_file: Path, labels: list[int]) -> list[str]:
    num = max((label for label in labels if label >= 0), default=-1) + 1
    names_file = list_file.parent / CLASSES_FILE
    if not names_file.is_file():
        return [f"class_{i}" for i in range(num)]
    names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < num:
        raise ValueError(f"{names_file} names {len(names)} classes, but {list_file} uses labels up to {num - 1}")
    return names


def _read_list(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    list_file = ann if ann.is_file() or ann.suffix else ann / f"{split}.csv"
    base = os.path.abspath(root) if root.is_dir() else None
    paths, labels = read_video_list(list_file, base, config_key="--annotations")
    paths = [os.path.abspath(p) for p in paths]
    present = set()
    for parent in {os.path.dirname(p) for p in paths}:  # one listing per folder, no stat per video
        present.update(e.path for e in _scan(Path(parent))[0])
    rows = [(os.path.splitext(os.path.basename(p))[0], (p,), label) for p, label in zip(paths, labels, strict=True)]
    records, missing = _attach(rows, {p: p for p in present})
    return DatasetIndex(records, _list_classes(list_file, labels), missing)


# --- Kinetics ---------------------------------------------------------------------------------


def _k400_csv(ann: Path, split: str) -> Path:
    names = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"), "test": ("test.csv",)}[split]
    for name in names:
        if (ann / name).is_file():
            return ann / name
    return _require(ann / names[0], f"the Kinetics annotation CSV with header {_K400_HEADER}")


def _k400_rows(csv_file: Path) -> list[dict[str, str]]:
    with open(csv_file, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        need = {"youtube_id", "time_start", "time_end"} - set(reader.fieldnames or ())
        if need:
            raise ValueError(f"{csv_file}: missing columns {sorted(need)}; expected header {_K400_HEADER}")
        return list(reader)


def _k400_classes(ann: Path, split: str, rows: list[dict[str, str]]) -> list[str]:
    source = rows if split == "train" or not (ann / "train.csv").is_file() else _k400_rows(ann / "train.csv")
    return sorted({r["label"] for r in source if r.get("label")})


def _read_k400(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    split = _canonical_split(split, ("train", "val", "test"))
    rows = _k400_rows(_k400_csv(ann, split))
    classes = _k400_classes(ann, split, rows)
    label_of = {name: i for i, name in enumerate(classes)}
    every_split = [d for dirs in _SPLIT_DIRS.values() for d in dirs]
    files = _video_files([root / d for d in _SPLIT_DIRS[split]] + [root], skip_dirs=every_split)
    wanted = []
    for r in rows:
        yid, label = r["youtube_id"], r.get("label") or ""
        if label and label not in label_of:
            raise ValueError(f"class {label!r} of {yid} ({split}) is not among the {len(classes)} train.csv classes")
        vid = f"{yid}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}"
        wanted.append((vid, (vid, yid), label_of[label] if label else -1))
    records, missing = _attach(wanted, files)
    return DatasetIndex(records, classes, missing)


# --- Something-Something v2 -------------------------------------------------------------------


def _load_json(path: Path, what: str) -> object:
    with open(_require(path, what), encoding="utf-8") as f:
        return json.load(f)


def _read_ssv2(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    split = _canonical_split(split, ("train", "val", "test"))
    table = _load_json(ann / "something-something-v2-labels.json", 'a JSON object {"<template>": "<index>"}')
    by_index = {int(index): name for name, index in table.items()}
    if sorted(by_index) != list(range(len(table))):
        raise ValueError(f"{ann / 'something-something-v2-labels.json'}: indexes must run 0..{len(table) - 1}")
    classes = [by_index[i] for i in range(len(table))]
    name = {"train": "train", "val": "validation", "test": "test"}[split]
    items = _load_json(ann / f"something-something-v2-{name}.json", 'a JSON list of {"id", "label", "template", ...}')
    rows = []
    for item in items:
        label = -1
        if "template" in item:
            template = item["template"].replace("[", "").replace("]", "")
            if template not in table:
                raise ValueError(f"SSv2 video {item['id']}: template {template!r} is not a key of the labels json")
            label = int(table[template])
        rows.append((str(item["id"]), (str(item["id"]),), label))
    records, missing = _attach(rows, _video_files([root]))
    return DatasetIndex(records, classes, missing)


# --- UCF101 -----------------------------------------------------------------------------------


def _ucf_classes(ann: Path) -> list[str]:
    path = _require(ann / "classInd.txt", "lines '<index> <ClassName>' numbered from 1")
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    pairs = sorted((int(i), name) for i, name in lines)
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise ValueError(f"{path}: class indexes must run 1..{len(pairs)}")
    return [name for _, name in pairs]


def _read_ucf101(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    split = _canonical_split(split, ("train", "val", "test"))
    classes = _ucf_classes(ann)
    label_of = {name.lower(): i for i, name in enumerate(classes)}
    kind = "trainlist" if split == "train" else "testlist"
    path = _require(ann / f"{kind}0{fold}.txt", "lines '<Class>/<video>.avi' (+ ' <index>' in trainlists)")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rel, *given = line.split()
        folder, stem = rel.split("/")[0], os.path.splitext(os.path.basename(rel))[0]
        if folder.lower() not in label_of:
            raise ValueError(f"{path}:{lineno}: folder {folder!r} is not a class of classInd.txt")
        label = label_of[folder.lower()]
        if given and int(given[0]) - 1 != label:
            raise ValueError(f"{path}:{lineno}: index {given[0]} disagrees with folder {folder!r}")
        rows.append((stem, (stem.lower(),), label))
    records, missing = _attach(rows, _video_files([root], key=str.lower))
    return DatasetIndex(records, classes, missing)


# --- HMDB51 -----------------------------------------------------------------------------------


def _hmdb_rows(path: Path, label: int, flag: str) -> list[Row]:
    """The videos of one class split file whose flag is ``flag``."""
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if fields and (len(fields) != 2 or fields[1] not in ("0", "1", "2")):
            raise ValueError(f"{path}:{lineno}: expected '<name>.avi <0|1|2>', got {line!r}")
        if fields and fields[1] == flag:
            stem = os.path.splitext(fields[0])[0]
            rows.append((stem, (stem,), label))
    return rows


def _read_hmdb51(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    flag = "1" if _canonical_split(split, ("train", "val", "test")) == "train" else "2"  # val = test
    folder = ann / "testTrainMulti_7030_splits" if (ann / "testTrainMulti_7030_splits").is_dir() else ann
    pattern = re.compile(rf"^(.+)_test_split{fold}\.txt$")
    names = [e.name for e in _scan(folder)[0]]
    split_files = sorted((m.group(1), folder / m.group(0)) for m in map(pattern.match, names) if m)
    if not split_files:
        raise FileNotFoundError(
            f"no <class>_test_split{fold}.txt in {folder}: expected one file per class with lines "
            f"'<name>.avi <flag>' (1 = train, 2 = test, 0 = unused)"
        )
    classes = [name for name, _ in split_files]
    rows = [row for label, (_, path) in enumerate(split_files) for row in _hmdb_rows(path, label, flag)]
    records, missing = _attach(rows, _video_files([root]))
    return DatasetIndex(records, classes, missing)


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
    """Read one split of a dataset in its published layout (see the module docstring).

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
    index = _READERS[format](root, ann, split, int(fold))
    if index.missing:
        log.warning("%s %s: %s", format, split, index.summary())
    return index


def build_index(
    format: str,
    root: str | os.PathLike,
    annotations: str | os.PathLike | None = None,
    split: str = "train",
    fold: int = 1,
) -> tuple[list[VideoRecord], list[str]]:
    """Records and class names of one split; missing videos are logged and dropped.

    Same arguments as :func:`index_dataset`, which also returns the missing ids.
    """
    index = index_dataset(format, root, annotations, split, fold)
    return index.records, index.classes


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


def load_records(
    format: str,
    root: str | os.PathLike,
    annotations: str | os.PathLike | None = None,
    split: str = "train",
    fold: int = 1,
) -> list[VideoRecord]:
    """Just the records of :func:`build_index` (what a dataset config passes to a dataset)."""
    return build_index(format, root, annotations, split, fold)[0]
