"""One reader per published layout (``list``, ``k400``, ``ssv2``, ``ucf101``, ``hmdb51``).

Each is ``reader(root, annotations, split, fold) -> DatasetIndex``; the formats are described in
:mod:`smile.data.indexes`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

from smile.data.indexes.common import (
    _SPLIT_DIRS,
    CLASSES_FILE,
    DatasetIndex,
    Row,
    _attach,
    _canonical_split,
    _require,
    _scan,
    _video_files,
)
from smile.data.listfile import read_video_list

_K400_HEADER = "label,youtube_id,time_start,time_end,split"


# --- list -------------------------------------------------------------------------------------


def list_classes(list_file: str | os.PathLike, labels: list[int]) -> tuple[list[str], str]:
    """Class names of a ``<path> <label>`` list and the file they come from.

    ``classes.txt`` beside the list when it exists (what :func:`~smile.data.indexes.write_list`
    writes), else ``class_<i>`` for ``i`` up to the largest label: a bare list only knows its labels.
    """
    list_file = Path(list_file)
    num = max((label for label in labels if label >= 0), default=-1) + 1
    names_file = list_file.parent / CLASSES_FILE
    if not names_file.is_file():
        return [f"class_{i}" for i in range(num)], str(list_file)
    names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < num:
        raise ValueError(f"{names_file} names {len(names)} classes, but {list_file} uses labels up to {num - 1}")
    return names, str(names_file)


def _read_list(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    list_file = ann if ann.is_file() or ann.suffix else ann / f"{split}.csv"
    base = os.path.abspath(root) if root.is_dir() else None
    paths, labels = read_video_list(list_file, base, config_key="--annotations")
    paths = [os.path.abspath(p) for p in paths]
    present: set[str] = set()
    for parent in {os.path.dirname(p) for p in paths}:  # one listing per folder, no stat per video
        present.update(e.path for e in _scan(Path(parent))[0])
    rows = [(os.path.splitext(os.path.basename(p))[0], (p,), label) for p, label in zip(paths, labels, strict=True)]
    records, missing = _attach(rows, {p: p for p in present})
    classes, classes_file = list_classes(list_file, labels)
    return DatasetIndex(records, classes, missing, classes_file)


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


def _k400_classes_file(ann: Path, split: str) -> str:
    """The CSV :func:`_k400_classes` took the names from."""
    return str(ann / "train.csv" if (ann / "train.csv").is_file() else _k400_csv(ann, split))


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
    return DatasetIndex(records, classes, missing, _k400_classes_file(ann, split))


# --- Something-Something v2 -------------------------------------------------------------------


def _load_json(path: Path, what: str) -> Any:
    with open(_require(path, what), encoding="utf-8") as f:
        return json.load(f)


def _read_ssv2(root: Path, ann: Path, split: str, fold: int) -> DatasetIndex:
    split = _canonical_split(split, ("train", "val", "test"))
    table: dict[str, str] = _load_json(
        ann / "something-something-v2-labels.json", 'a JSON object {"<template>": "<index>"}'
    )
    by_index = {int(index): name for name, index in table.items()}
    if sorted(by_index) != list(range(len(table))):
        raise ValueError(f"{ann / 'something-something-v2-labels.json'}: indexes must run 0..{len(table) - 1}")
    classes = [by_index[i] for i in range(len(table))]
    name = {"train": "train", "val": "validation", "test": "test"}[split]
    items: list[dict[str, Any]] = _load_json(
        ann / f"something-something-v2-{name}.json", 'a JSON list of {"id", "label", "template", ...}'
    )
    rows: list[Row] = []
    for item in items:
        label = -1
        if "template" in item:
            template = item["template"].replace("[", "").replace("]", "")
            if template not in table:
                raise ValueError(f"SSv2 video {item['id']}: template {template!r} is not a key of the labels json")
            label = int(table[template])
        rows.append((str(item["id"]), (str(item["id"]),), label))
    records, missing = _attach(rows, _video_files([root]))
    return DatasetIndex(records, classes, missing, str(ann / "something-something-v2-labels.json"))


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
    rows: list[Row] = []
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
    return DatasetIndex(records, classes, missing, str(ann / "classInd.txt"))


# --- HMDB51 -----------------------------------------------------------------------------------


def _hmdb_rows(path: Path, label: int, flag: str) -> list[Row]:
    """The videos of one class split file whose flag is ``flag``."""
    rows: list[Row] = []
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
    return DatasetIndex(records, classes, missing, str(folder / f"*_test_split{fold}.txt"))
