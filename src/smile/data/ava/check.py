"""Check a downloaded AVA v2.2 before training: every file readable, every frame folder present and long enough.

Expected layout (the one of mmaction2 / SlowFast; ``--annotations`` and ``--frames`` move the parts)::

    ROOT/annotations/ava_{train,val}_v2.2.csv                                 required
    ROOT/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt          required (or ava_action_list_v2.2.pbtxt)
    ROOT/annotations/ava_{train,val}_excluded_timestamps_v2.2.csv             optional
    ROOT/annotations/ava_dense_proposals_val.FAIR.recall_93.9.pkl             required (test-time person boxes)
    ROOT/annotations/ava_dense_proposals_train.FAIR.recall_93.9.pkl           optional
    ROOT/frames/<video_id>/<video_id>_<k:06d>.jpg                             one folder per video of the CSVs
    (or, with ``frame_source="video"``, ROOT/frames/<video_id>.* : the 15-minute cut videos, time 0 = second 900)

Every file is read with the readers of :mod:`smile.data.ava.files`, so a malformed row is reported
with its file and line. A frame folder is *short* (an error) when it lacks the frame of its video's
last keyframe, and *incomplete* (a warning) when it has fewer than the 27,030 frames of the
15-minute + 1 s window at 30 fps but still every keyframe: clips near its end repeat its last frame.
A video's length counts in the same 30 fps frames (its duration from its frame count and fps).
"""

from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smile.data.ava.files import (
    DEFAULT_PROPOSAL_SCORE,
    FPS,
    count_frames,
    keyframe_index,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
)

__all__ = ["FULL_WINDOW_FRAMES", "AvaCheckReport", "SplitStats", "check_ava"]

FULL_WINDOW_FRAMES = 901 * FPS  # seconds 900..1801 at 30 fps: what a complete extraction holds
LABEL_MAPS = ("ava_action_list_v2.2_for_activitynet_2019.pbtxt", "ava_action_list_v2.2.pbtxt")
_SHOWN = 5  # names listed per kind of problem


@dataclass
class SplitStats:
    """What one split's files hold (``None``: the optional file is absent)."""

    videos: int = 0
    keyframes: int = 0
    boxes: int = 0
    excluded: int | None = None
    proposal_keyframes: int | None = None
    proposals_kept: int = 0  # proposals scoring >= the threshold
    keyframes_without_proposals: int = 0  # annotated, not excluded, no proposal >= the threshold

    def line(self, name: str, score: float) -> str:
        text = f"{name}: {self.videos} videos, {self.keyframes} keyframes, {self.boxes} boxes"
        text += "" if self.excluded is None else f", {self.excluded} excluded keyframes"
        if self.proposal_keyframes is None:
            return text + "; no proposals file"
        per = self.proposals_kept / max(self.proposal_keyframes, 1)
        return (
            f"{text}; proposals: {self.proposal_keyframes} keyframes, {per:.2f} boxes >= {score} per keyframe, "
            f"{self.keyframes_without_proposals} annotated keyframes without one"
        )


@dataclass
class AvaCheckReport:
    """Everything :func:`check_ava` found; ``ok`` is False when training or evaluation would fail."""

    annotations: Path
    frames: Path
    proposal_score: float
    label_map: Path | None = None
    classes: int = 0
    splits: dict[str, SplitStats] = field(default_factory=dict)
    folders: int = 0
    missing_folders: list[str] = field(default_factory=list)
    short_folders: list[tuple[str, int, int]] = field(default_factory=list)  # video, frames, frames needed
    incomplete_folders: list[tuple[str, int]] = field(default_factory=list)  # video, frames
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """A human-readable report, problems and warnings last."""
        lines = [f"annotations: {self.annotations}", f"frames: {self.frames}"]
        if self.label_map is not None:
            lines.append(f"label map: {self.label_map.name} ({self.classes} classes)")
        lines += [s.line(name, self.proposal_score) for name, s in self.splits.items()]
        lines.append(
            f"frame folders: {self.folders} checked, {len(self.missing_folders)} missing, "
            f"{len(self.short_folders)} short, {len(self.incomplete_folders)} incomplete"
        )
        for title, items in (("problems", self.problems), ("warnings", self.warnings)):
            if items:
                lines += [f"{title} ({len(items)}):", *(f"  - {p}" for p in items)]
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)


def _read(report: AvaCheckReport, reader: Any, path: Path, *args: Any) -> Any:
    """``reader(path)``, or None with the reader's message (file and line) recorded as a problem."""
    try:
        return reader(path, *args)
    except (FileNotFoundError, ValueError) as e:
        report.problems.append(str(e))
        return None


def _split(report: AvaCheckReport, ann: Path, split: str, needs_proposals: bool) -> dict[str, int]:
    """Read one split's files into ``report``; returns ``video -> last keyframe second`` to check frames against."""
    stats = report.splits[split] = SplitStats()
    keyframes = _read(report, read_annotations, ann / f"ava_{split}_v2.2.csv") or {}
    excluded_csv = ann / f"ava_{split}_excluded_timestamps_v2.2.csv"
    excluded = _read(report, read_excluded, excluded_csv) if excluded_csv.is_file() else None
    proposals_pkl = ann / f"ava_dense_proposals_{split}.FAIR.recall_93.9.pkl"
    proposals = None
    if proposals_pkl.is_file() or needs_proposals:
        proposals = _read(report, read_proposals, proposals_pkl, report.proposal_score)
    last: dict[str, int] = {}
    for vid, sec in keyframes:
        last[vid] = max(last.get(vid, sec), sec)
    stats.videos, stats.keyframes = len(last), len(keyframes)
    stats.boxes = sum(len(k.boxes) for k in keyframes.values())
    stats.excluded = None if excluded is None else len(excluded)
    if proposals is not None:
        stats.proposal_keyframes = sum(1 for vid, _ in proposals if vid in last)
        stats.proposals_kept = sum(len(p) for (vid, _), p in proposals.items() if vid in last)
        skip = excluded or set()
        stats.keyframes_without_proposals = sum(1 for k in keyframes if k not in skip and not len(proposals.get(k, [])))
        for vid, sec in proposals:
            if vid in last:
                last[vid] = max(last[vid], sec)
    return last


def _count(frames: Path, vid: str, source: str, pattern: str) -> int:
    """Frames in the folder, or the video's length in 30 fps frames; 0 when missing, empty or unreadable."""
    if source == "jpg":
        try:
            return count_frames(frames, vid)
        except FileNotFoundError:
            return 0
    from smile.data.decoding import video_info  # the decoders only for the video layout

    hits = sorted(frames.glob(pattern.format(video_id=glob.escape(vid))))
    if len(hits) != 1:
        return 0
    try:
        info = video_info(hits[0])
    except (OSError, RuntimeError, ValueError):
        return 0
    return int(info.num_frames / info.fps * FPS) if info.fps > 0 else 0


def _frames(
    report: AvaCheckReport, last: dict[str, int], expected: int, workers: int, source: str, pattern: str
) -> None:
    """Count every video's frames; record missing, short and incomplete folders (or videos)."""
    if not report.frames.is_dir():
        report.problems.append(f"frames folder {report.frames} not found (--frames)")
        return
    videos = sorted(last)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        counts = list(pool.map(lambda v: _count(report.frames, v, source, pattern), videos))
    report.folders = len(videos)
    for vid, n in zip(videos, counts, strict=True):
        needed = keyframe_index(last[vid]) + 1
        if n == 0:
            report.missing_folders.append(vid)
        elif n < needed:
            report.short_folders.append((vid, n, needed))
        elif n < expected:
            report.incomplete_folders.append((vid, n))
    if report.missing_folders:
        report.problems.append(
            f"{len(report.missing_folders)} of {len(videos)} frame folders missing or empty under {report.frames} "
            f"(first: {', '.join(report.missing_folders[:_SHOWN])})"
        )
    if report.short_folders:
        shown = ", ".join(f"{v} ({n} < {m})" for v, n, m in report.short_folders[:_SHOWN])
        report.problems.append(
            f"{len(report.short_folders)} frame folders lack their last keyframe's frame (frames < needed): {shown}"
        )
    if report.incomplete_folders:
        shown = ", ".join(f"{v} ({n})" for v, n in report.incomplete_folders[:_SHOWN])
        report.warnings.append(
            f"{len(report.incomplete_folders)} frame folders have fewer than {expected} frames but every keyframe: "
            f"{shown}"
        )


def check_ava(
    root: str | Path | None = None,
    frames: str | Path | None = None,
    annotations: str | Path | None = None,
    proposal_score: float = DEFAULT_PROPOSAL_SCORE,
    expected_frames: int = FULL_WINDOW_FRAMES,
    workers: int = 8,
    frame_source: str = "jpg",
    video_pattern: str = "{video_id}.*",
) -> AvaCheckReport:
    """Validate an AVA v2.2 download (see the module docstring for the layout).

    Args:
        root: Dataset root; ``frames`` and ``annotations`` default to ``root/frames`` and ``root/annotations``.
        frames: The frame folders' root.
        annotations: The annotation files' folder.
        proposal_score: Proposals counted as kept score at least this (the datasets' threshold).
        expected_frames: Frames of a complete folder (warning below it); 0 turns the warning off.
        workers: Threads counting frames.
        frame_source: ``"jpg"`` (frame folders) or ``"video"`` (one video per id, found with ``video_pattern``;
            a missing, ambiguous or unreadable video counts as missing).
        video_pattern: The video file of ``{video_id}`` under ``frames`` (as the datasets' ``video_pattern``).

    Returns:
        The report; ``report.ok`` is False when something would break training or evaluation.

    Raises:
        ValueError: Neither ``root`` nor both ``frames`` and ``annotations`` given, or an unknown ``frame_source``.
    """
    if frame_source not in ("jpg", "video"):
        raise ValueError(f"frame_source={frame_source!r} must be 'jpg' or 'video' (--frame-source)")
    if root is None and (frames is None or annotations is None):
        raise ValueError("check_ava needs root (--root) or both frames (--frames) and annotations (--annotations)")
    ann = Path(annotations) if annotations is not None else Path(root or ".") / "annotations"
    report = AvaCheckReport(ann, Path(frames) if frames is not None else Path(root or ".") / "frames", proposal_score)
    if not ann.is_dir():
        report.problems.append(f"annotations folder {ann} not found (--annotations)")
        return report
    report.label_map = next((ann / n for n in LABEL_MAPS if (ann / n).is_file()), ann / LABEL_MAPS[0])
    report.classes = len(_read(report, read_label_map, report.label_map) or {})
    last = _split(report, ann, "train", needs_proposals=False)
    for vid, sec in _split(report, ann, "val", needs_proposals=True).items():
        last[vid] = max(last.get(vid, sec), sec)
    _frames(report, last, expected_frames, workers, frame_source, video_pattern)
    if any(s.keyframes_without_proposals for s in report.splits.values()):
        report.warnings.append(
            f"some annotated keyframes have no proposal scoring >= {proposal_score}: their persons go undetected"
        )
    return report
