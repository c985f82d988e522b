"""Find the videos of a list that cannot be decoded or are too short, before a run trips over them.

Each video is opened with :func:`~smile.data.decoding.video_info` and its first and last frames
are decoded with :func:`~smile.data.decoding.read_frames`, in a process pool (decoders hold the
GIL in places, and a crashing C library then takes down one worker's task, not the scan). The
last frame catches truncated files whose header promises more frames than the stream holds.

Given a clip span (``(num_frames - 1) * sampling_rate + 1`` frames, :func:`clip_span`), readable
videos with fewer frames are flagged ``short``: training pads their clips by repeating frames.

The report is a TSV ``path status reason frames fps size duration_s`` with one row per distinct
video, in list order; ``status`` is ``ok``, ``short`` or ``bad``, ``reason`` is empty for good
videos, and the video facts (``size`` = ``<width>x<height>``) are empty for bad ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from smile.data.decoding import Backend, VideoDecodeError, VideoInfo, read_frames, video_info
from smile.data.listfile import read_video_list

REPORT_HEADER = ("path", "status", "reason", "frames", "fps", "size", "duration_s")
_SHOW_BAD = 10


def clip_span(num_frames: int, sampling_rate: int) -> int:
    """Frames a clip of ``num_frames`` taken ``sampling_rate`` apart covers: ``(N - 1) * R + 1``."""
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(f"--frames and --sampling-rate must be >= 1, got {num_frames}, {sampling_rate}")
    return (num_frames - 1) * sampling_rate + 1


@dataclass(frozen=True)
class VideoCheck:
    """Outcome for one video: ``ok`` (decodable) or the ``reason`` it failed; its facts; ``short`` of the span."""

    path: str
    ok: bool
    reason: str = ""
    info: VideoInfo | None = None
    short: bool = False

    @property
    def status(self) -> str:
        """``bad`` (unreadable), ``short`` (readable, fewer frames than the span) or ``ok``."""
        return "bad" if not self.ok else "short" if self.short else "ok"

    def facts(self) -> tuple[str, str, str, str]:
        """``frames, fps, size, duration_s`` as report cells (empty when the video could not be read)."""
        i = self.info
        if i is None:
            return "", "", "", ""
        duration = f"{i.num_frames / i.fps:.3f}" if i.fps > 0 else ""
        return str(i.num_frames), f"{i.fps:g}", f"{i.width}x{i.height}", duration


@dataclass
class CheckReport:
    """Outcomes of a whole list, in list order."""

    results: list[VideoCheck]
    span: int | None = None

    @property
    def bad(self) -> list[VideoCheck]:
        return [r for r in self.results if not r.ok]

    @property
    def short(self) -> list[VideoCheck]:
        return [r for r in self.results if r.short]

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / max(1, len(self.results))

    def summary(self) -> str:
        """Counts, then the first few bad videos with their reasons."""
        bad, short = self.bad, self.short
        good = len(self.results) - len(bad) - len(short)
        counts = f"{good} ok, " + (f"{len(short)} short (< {self.span} frames), " if self.span else "")
        lines = [f"{counts}{len(bad)} bad ({self.bad_fraction:.2%} bad)"]
        lines += [f"  short: {r.path}: {r.reason}" for r in short[:_SHOW_BAD]]
        lines += [f"  bad: {r.path}: {r.reason}" for r in bad[:_SHOW_BAD]]
        if len(bad) > _SHOW_BAD:
            lines.append(f"  ... and {len(bad) - _SHOW_BAD} more (see the report)")
        return "\n".join(lines)


def _reason(err: Exception, path: str) -> str:
    """The error text without ``<path>: `` prefixes (the report has its own path column)."""
    return " ".join(str(err).replace(f"{path}: ", "").split())  # one line, no tabs: the report is a TSV


def check_video(path: str, backend: Backend = "auto", span: int | None = None) -> VideoCheck:
    """Open ``path``, read its facts and decode its first and last frames; flag it short of ``span`` frames.

    Any failure becomes a bad result rather than an exception: the caller wants the whole list
    scanned. Errors other than :class:`VideoDecodeError` are named with their type, so a bug in
    the decoding layer shows up as such instead of passing for a corrupt file.
    """
    try:
        info = video_info(path, backend)
        read_frames(path, [0, info.num_frames - 1], backend)
    except VideoDecodeError as err:
        return VideoCheck(path, False, _reason(err, path))
    except Exception as err:  # noqa: BLE001 - reported per video, see docstring
        return VideoCheck(path, False, f"unexpected {type(err).__name__}: {_reason(err, path)}")
    if span is not None and info.num_frames < span:
        reason = f"{info.num_frames} frames < the clip span of {span}: its clips repeat frames"
        return VideoCheck(path, True, reason, info, short=True)
    return VideoCheck(path, True, info=info)


def _check_pair(args: tuple[str, Backend, int | None]) -> VideoCheck:
    return check_video(*args)


def _progress(enabled: bool, total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(advance, close) of a rich progress bar, or no-ops."""
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("checking videos"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = bar.add_task("check", total=total)
    bar.start()
    return (lambda: bar.advance(task)), bar.stop


def _run(paths: Sequence[str], backend: Backend, workers: int, span: int | None) -> Iterator[VideoCheck]:
    """Results in input order; ``workers <= 1`` checks in this process (no pool)."""
    jobs = [(p, backend, span) for p in paths]
    if workers <= 1:
        yield from map(_check_pair, jobs)
        return
    chunk = max(1, min(32, len(jobs) // (workers * 8)))  # few round trips, still a smooth bar
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_check_pair, jobs, chunksize=chunk)


def check_videos(
    paths: Sequence[str],
    backend: Backend = "auto",
    workers: int | None = None,
    progress: bool = True,
    span: int | None = None,
) -> CheckReport:
    """Check each distinct path once (in first-seen order).

    Args:
        paths: Video files.
        backend: Decoder, as in :func:`~smile.data.decoding.read_frames`.
        workers: Processes (default: CPU count); ``1`` or ``0`` checks in this process.
        progress: Show a rich progress bar.
        span: Frames a training clip spans (:func:`clip_span`); shorter videos are flagged. None: no flag.
    """
    unique = list(dict.fromkeys(os.fspath(p) for p in paths))
    workers = min(os.cpu_count() or 1, len(unique)) if workers is None else min(int(workers), len(unique))
    advance, close = _progress(progress, len(unique))
    results = []
    try:
        for result in _run(unique, backend, workers, span):
            results.append(result)
            advance()
    finally:
        close()
    return CheckReport(results, span)


def check_list(
    list_file: str | os.PathLike,
    root: str | os.PathLike | None = None,
    backend: Backend = "auto",
    workers: int | None = None,
    progress: bool = True,
    span: int | None = None,
) -> CheckReport:
    """Check every video of a ``<path> <label>`` (or ``path,label`` CSV) list.

    Args:
        list_file: The list, read with :func:`~smile.data.datasets.list.read_video_list`.
        root: Folder relative paths resolve against (default: the list's folder).
        backend, workers, progress, span: As in :func:`check_videos`.
    """
    paths, _ = read_video_list(list_file, root, config_key="--list")
    return check_videos(paths, backend, workers, progress, span)


def write_report(report: CheckReport, out: str | os.PathLike) -> Path:
    """Write the TSV report (header :data:`REPORT_HEADER`, one row per video)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\t".join(REPORT_HEADER) + "\n")
        for r in report.results:
            f.write("\t".join((r.path, r.status, r.reason, *r.facts())) + "\n")
    return out
