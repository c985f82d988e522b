"""Readers for the published AVA v2.2 files: annotations, label map, excluded timestamps, proposals, frames.

Every reader raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and
the (1-based) line, or the pickle key, for malformed content.

Frame convention (the one of SlowFast's ``ava_helper`` and AlphAction): the frames of a video are
extracted at 30 fps from its 15-minute window starting at second 900 into
``<root>/<video_id>/<video_id>_<k:06d>.jpg`` with ``k`` starting at 1, so file ``k`` shows second
``900 + (k - 1) / 30``. A keyframe at second ``t`` (902..1798) is 0-based frame index
``(t - 900) * 30``, i.e. file number ``(t - 900) * 30 + 1``. A clip of ``num_frames`` at ``stride``
takes the indices ``range(c - num_frames * stride // 2, c + num_frames * stride // 2, stride)``
(the keyframe is clip frame ``num_frames // 2``), clamped to the folder's first and last frame.
"""

from __future__ import annotations

import csv
import glob
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NUM_CLASSES = 80
FPS = 30
WINDOW_START_S = 900
DEFAULT_PROPOSAL_SCORE = 0.8  # AlphAction's test-time person-detection threshold

Key = tuple[str, int]

# numpy's array reconstruction (protocols 0-4: _reconstruct; 5: _frombuffer, numpy 1.x and 2.x names), bytes
# in protocol < 3 pickles (_codecs.encode, bytes: pure constructors), containers; __builtin__: Python 2 pickles
# (the original FAIR proposal files). Nothing else resolves, so a hostile pickle cannot run code.
_PICKLE_ALLOWED = {
    *((f"numpy{c}.multiarray", "_reconstruct") for c in (".core", "._core")),
    *((f"numpy{c}.numeric", "_frombuffer") for c in (".core", "._core")),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    *((m, n) for m in ("builtins", "__builtin__") for n in ("bytes", "dict", "list", "tuple")),
}


@dataclass(frozen=True)
class AvaKeyframe:
    """The labelled persons of one keyframe.

    Attributes:
        boxes: ``[N, 4]`` float32 ``x1, y1, x2, y2`` normalised to ``[0, 1]``.
        labels: ``[N, 80]`` float32 multi-hot, column ``action_id - 1``.
        person_ids: ``[N]`` int64 person (track) ids; -1 where the CSV has no person-id column.
    """

    boxes: np.ndarray
    labels: np.ndarray
    person_ids: np.ndarray


def _exists(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AVA {what} file {path} not found")
    return path


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    with path.open(newline="") as f:
        return [(i, [c.strip() for c in row]) for i, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)]


def read_annotations(path: str | Path) -> dict[Key, AvaKeyframe]:
    """Read ``ava_{train,val}_v2.2.csv``: one row per (person box, action), grouped per keyframe.

    Rows are ``video_id, second, x1, y1, x2, y2, action_id[, person_id]``; rows of the same keyframe
    with the same person id and identical box are merged into one box with several actions.

    Args:
        path: The annotation CSV.

    Returns:
        ``(video_id, second) -> AvaKeyframe``, keyframes in file order, boxes in first-seen order.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A malformed row (names file and line).
    """
    path = _exists(path, "annotation")
    groups: dict[Key, dict[tuple[int, tuple[float, ...]], set[int]]] = {}
    for line, row in _rows(path):
        where = f"{path}:{line}"
        if len(row) not in (7, 8) or not row[0]:
            raise ValueError(f"{where}: expected 7 or 8 comma-separated fields and a video id, got {row}")
        try:
            second, action = int(row[1]), int(row[6])
            box = tuple(float(v) for v in row[2:6])
            person = int(row[7]) if len(row) == 8 else -1
        except ValueError as e:
            raise ValueError(f"{where}: not a number ({e}): {row}") from None
        if not all(0.0 <= v <= 1.0 for v in box) or box[0] > box[2] or box[1] > box[3]:
            raise ValueError(f"{where}: box {box} is not normalised x1<=x2, y1<=y2 in [0, 1]")
        if not 1 <= action <= NUM_CLASSES:
            raise ValueError(f"{where}: action id {action} outside 1..{NUM_CLASSES}")
        groups.setdefault((row[0], second), {}).setdefault((person, box), set()).add(action)
    out: dict[Key, AvaKeyframe] = {}
    for key, persons in groups.items():
        labels = np.zeros((len(persons), NUM_CLASSES), np.float32)
        for i, actions in enumerate(persons.values()):
            labels[i, [a - 1 for a in actions]] = 1.0
        boxes = np.array([b for _, b in persons], np.float32).reshape(-1, 4)
        out[key] = AvaKeyframe(boxes, labels, np.array([p for p, _ in persons], np.int64))
    return out


_TOKEN = re.compile(
    r'\s*(?:(?P<open>\w+)\s*\{|(?P<close>\})|(?P<key>\w+)\s*:\s*(?:"(?P<str>(?:[^"\\]|\\.)*)"|(?P<val>[^\s{}]+)))'
)


def _entry(block: dict[str, str], where: str, seen: dict[int, str]) -> int:
    ident = block.get("id", block.get("label_id"))
    if "name" not in block or ident is None:
        raise ValueError(f"{where}: entry without name and id/label_id: {block}")
    try:
        n = int(ident)
    except ValueError:
        raise ValueError(f"{where}: id {ident!r} is not an integer") from None
    if not 1 <= n <= NUM_CLASSES or n in seen:
        raise ValueError(f"{where}: id {n} duplicated or outside 1..{NUM_CLASSES}")
    return n


def read_label_map(path: str | Path) -> dict[int, str]:
    """Read an AVA label map pbtxt: ``item { name: "..." id: N }`` or ``label { name: ... label_id: N }``.

    Both the 60-class ``ava_action_list_v2.2_for_activitynet_2019.pbtxt`` and the full 80-class
    ``ava_action_list_v2.2.pbtxt`` are accepted; other fields (``label_type``) are ignored.

    Args:
        path: The pbtxt file.

    Returns:
        ``action_id -> name`` in file order.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A malformed entry, a duplicate id, or no entries (names file and line).
    """
    path = _exists(path, "label map")
    out: dict[int, str] = {}
    block: dict[str, str] | None = None
    start = 0
    for line, raw in enumerate(path.read_text().splitlines(), 1):
        where, s = f"{path}:{line}", raw.split("#", 1)[0] if '"' not in raw else raw
        pos = 0
        while m := _TOKEN.match(s, pos):
            pos = m.end()
            if m.group("open"):
                if block is not None or m.group("open") not in ("item", "label"):
                    raise ValueError(f"{where}: unexpected block {m.group('open')!r}")
                block, start = {}, line
            elif m.group("close"):
                if block is None:
                    raise ValueError(f"{where}: '}}' without an open block")
                out_id = _entry(block, f"{path}:{start}", out)
                out[out_id], block = block["name"], None
            else:
                if block is None:
                    raise ValueError(f"{where}: field outside an item block")
                block[m.group("key")] = m.group("str") if m.group("str") is not None else m.group("val")
        if s[pos:].strip():
            raise ValueError(f"{where}: unexpected text {s[pos:].strip()!r}")
    if block is not None:
        raise ValueError(f"{path}:{start}: block not closed")
    if not out:
        raise ValueError(f"{path}: no label entries")
    return out


def read_excluded(path: str | Path) -> set[Key]:
    """Read ``ava_{train,val}_excluded_timestamps_v2.2.csv`` (``video_id,second`` per line).

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A malformed row (names file and line).
    """
    path = _exists(path, "excluded-timestamps")
    out: set[Key] = set()
    for line, row in _rows(path):
        if len(row) != 2 or not row[0] or not row[1].isdigit():
            raise ValueError(f"{path}:{line}: expected 'video_id,second', got {row}")
        out.add((row[0], int(row[1])))
    return out


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise ValueError(f"{self._path}: refused pickle global {module}.{name} (only numpy arrays are allowed)")
        return super().find_class(module, name)


def read_proposals(path: str | Path, score_threshold: float = DEFAULT_PROPOSAL_SCORE) -> dict[Key, np.ndarray]:
    """Read a person-proposal pickle ``{"<video_id>,<second:04d>": ndarray [N, 5]}`` safely.

    The pickle is read with an unpickler that only resolves numpy's array reconstruction, so a
    hostile file cannot run code.

    Args:
        path: The pickle (e.g. ``ava_dense_proposals_val.FAIR.recall_93.9.pkl``).
        score_threshold: Keep boxes whose score (column 4) is ``>= score_threshold``.

    Returns:
        ``(video_id, second) -> float32 [M, 5]`` (``x1 y1 x2 y2 score``, normalised).

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A refused global, a non-dict, a bad key or array shape (names file and key).
    """
    path = _exists(path, "proposals")
    try:
        with path.open("rb") as f:
            data = _SafeUnpickler(f, path).load()
    except ValueError:
        raise  # a refused global, already naming the file and the global
    except Exception as e:  # corrupt pickles raise many kinds of errors
        raise ValueError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict, got {type(data).__name__}")
    out: dict[Key, np.ndarray] = {}
    for key, value in data.items():
        parts = key.split(",") if isinstance(key, str) else []
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{path}: key {key!r} is not '<video_id>,<second>'")
        try:
            arr = np.asarray(value, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: key {key!r}: value is not a numeric array") from None
        arr = arr.reshape(0, 5) if arr.size == 0 else arr
        if arr.ndim != 2 or arr.shape[1] != 5:
            raise ValueError(f"{path}: key {key!r}: expected [N, 5] boxes, got shape {arr.shape}")
        out[(parts[0], int(parts[1]))] = arr[arr[:, 4] >= score_threshold]
    return out


def keyframe_index(second: int) -> int:
    """0-based frame index of keyframe ``second`` (file number is this plus 1)."""
    return (second - WINDOW_START_S) * FPS


def frame_path(root: str | Path, video_id: str, index: int) -> Path:
    """Path of the 0-based frame ``index``: ``<root>/<video_id>/<video_id>_<index + 1:06d>.jpg``."""
    return Path(root) / video_id / f"{video_id}_{index + 1:06d}.jpg"


def count_frames(root: str | Path, video_id: str) -> int:
    """Number of ``<video_id>_*.jpg`` frames in ``<root>/<video_id>``; FileNotFoundError if none or no folder."""
    folder = Path(root) / video_id
    if not folder.is_dir():
        raise FileNotFoundError(f"AVA frame folder {folder} not found")
    n = sum(1 for _ in folder.glob(f"{glob.escape(video_id)}_*.jpg"))
    if n == 0:
        raise FileNotFoundError(f"AVA frame folder {folder} holds no {video_id}_NNNNNN.jpg frames")
    return n


def clip_frame_paths(
    root: str | Path, video_id: str, second: int, num_frames: int = 16, stride: int = 4, total: int | None = None
) -> list[Path]:
    """Frame paths of the clip centred on keyframe ``second`` (see the module docstring's convention).

    Args:
        root: The frames root holding ``<video_id>/`` folders.
        video_id: The video.
        second: The keyframe second (AVA: 902..1798).
        num_frames: Frames in the clip.
        stride: Frame step.
        total: Frames in the folder; counted when ``None``.

    Returns:
        ``num_frames`` paths, indices clamped to ``[0, total - 1]``.

    Raises:
        FileNotFoundError: The folder or a frame file is missing (names it).
    """
    n = count_frames(root, video_id) if total is None else total
    centre, half = keyframe_index(second), num_frames * stride // 2
    paths = [frame_path(root, video_id, min(max(i, 0), n - 1)) for i in range(centre - half, centre + half, stride)]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"AVA frame {p} not found (keyframe {video_id},{second:04d})")
    return paths
