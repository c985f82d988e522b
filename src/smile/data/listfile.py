"""List files of videos: the reference's ``<path> <label>`` lines or a ``path,label`` CSV (SPEC §2.1).

Kept apart from the datasets (no torch, no transforms) so that ``smile-data index`` and the index
readers load in a fraction of a second.

Two list formats are read:

* the reference's: one ``<path> <label>`` per line, split on a single space, no header;
* CSV with the header line ``path,label``, so that paths may contain spaces (quote them if they
  contain commas).

Relative paths are resolved against ``root`` (default: the list file's folder), and a path whose
last component has no ``.`` gets ``.mp4`` appended, as in the reference.
"""

from __future__ import annotations

import csv
import os

from smile.data.paths import check_folder

__all__ = ["CSV_HEADER", "read_video_list"]

CSV_HEADER = "path,label"


def _resolve(path: str, base: str) -> str:
    """Reference rule: no ``.`` in the last component means an ``.mp4`` file."""
    if "." not in os.path.basename(path):
        path += ".mp4"
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _parse_label(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: label {text!r} is not an integer") from None


def _space_rows(lines: list[str], list_file: str) -> list[tuple[str, str, str]]:
    """``<path> <label>`` rows; more than one space means the path has spaces (needs CSV)."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split(" ")
        if len(fields) != 2:
            raise ValueError(
                f"{list_file}:{lineno}: expected '<path> <label>' separated by one space, got {line!r}. "
                f"For paths with spaces write a CSV whose first line is '{CSV_HEADER}'."
            )
        rows.append((fields[0], fields[1], f"{list_file}:{lineno}"))
    return rows


def _csv_rows(lines: list[str], list_file: str) -> list[tuple[str, str, str]]:
    rows = []
    for lineno, fields in enumerate(csv.reader(lines[1:]), 2):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != 2:
            raise ValueError(f"{list_file}:{lineno}: expected 2 CSV fields (path,label), got {fields!r}")
        rows.append((fields[0], fields[1].strip(), f"{list_file}:{lineno}"))
    return rows


def read_video_list(
    list_file: str | os.PathLike, root: str | os.PathLike | None = None, config_key: str = "data.train_list"
) -> tuple[list[str], list[int]]:
    """Parse a list file into resolved paths and integer labels.

    Args:
        list_file: Space-separated reference list or ``path,label`` CSV (detected by its header).
        root: Folder that relative paths are relative to; default the list file's folder.
        config_key: Config key named in the error when the file is missing.

    Raises:
        FileNotFoundError: The list file does not exist (the message says which key to set).
        ValueError: Malformed line or an empty list.
    """
    list_file = os.fspath(list_file)
    if not os.path.isfile(list_file):
        raise FileNotFoundError(
            f"video list {list_file!r} not found. Set {config_key}=/path/to/train.csv "
            f"(one '<path> <label>' per line, or a CSV with header '{CSV_HEADER}'; see README: Data)."
        )
    with open(list_file, encoding="utf-8-sig", newline="") as f:
        lines = f.read().splitlines()
    is_csv = bool(lines) and lines[0].strip() == CSV_HEADER
    rows = _csv_rows(lines, list_file) if is_csv else _space_rows(lines, list_file)
    if not rows:
        raise ValueError(f"video list {list_file!r} lists no videos")
    if root is not None:  # a mistyped root would otherwise show as every video "missing"
        check_folder(root, config_key.rsplit(".", 1)[0] + ".root")
    base = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(list_file))
    paths = [_resolve(p, base) for p, _, _ in rows]
    labels = [_parse_label(label, where) for _, label, where in rows]
    return paths, labels
