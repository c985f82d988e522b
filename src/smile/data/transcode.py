"""Rewrite a video dataset for fast training: small short side, short GOP, no audio (``smile-data transcode``).

Decoding a pretraining clip costs every frame from the keyframe before the window to its last
frame (PERFORMANCE.md), so a dataset stored at short side 320 with a keyframe every ``gop`` frames
decodes several times faster than Kinetics as published (long GOPs, often larger frames). Each
video is re-encoded with H.264 (``libx264``, ``yuv420p``, constant frame rate, audio dropped) from
any input PyAV reads.

The job is resumable: an output that exists is finished (it is written under a temporary name in
the same folder and renamed only after it decoded), so a second run skips it and an interrupted
one (a leftover temporary file) is redone. Each output is verified: it must decode and hold the
input's frame count within one frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

__all__ = ["TEMP_SUFFIX", "TranscodeResult", "output_path", "transcode_list", "transcode_video"]

TEMP_SUFFIX = ".part.mp4"  # an unfinished output: `<name>.part.mp4` beside `<name>.mp4`


@dataclass(frozen=True)
class TranscodeResult:
    """What happened to one video: ``status`` is ``done``, ``skipped`` (output existed) or ``failed``."""

    src: str
    dst: str
    status: str
    frames_in: int = 0
    frames_out: int = 0
    reason: str = ""


def output_path(src: str, in_root: str, out_dir: str | os.PathLike) -> Path:
    """``out_dir / <src relative to in_root>`` with the suffix ``.mp4`` (the folder layout is kept)."""
    rel = os.path.relpath(os.path.abspath(src), in_root)
    return Path(out_dir, rel).with_suffix(".mp4")


def _even(x: float) -> int:
    """The nearest even integer >= 2 (yuv420p needs even sides)."""
    return max(2, int(round(x / 2)) * 2)


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(h, w)`` with the short side ``short_side`` and the aspect ratio kept (sides rounded to even)."""
    if height <= width:
        return _even(short_side), _even(width * short_side / height)
    return _even(height * short_side / width), _even(short_side)


def _encode(src: str, tmp: Path, short_side: int, gop: int, crf: int, codec: str) -> int:
    """Decode ``src``'s first video stream, resize, encode to ``tmp``; returns the frames written."""
    import av
    from av.video.stream import VideoStream

    with av.open(src) as inp, av.open(str(tmp), "w", format="mp4") as out:
        if not inp.streams.video:
            raise ValueError("no video stream")
        vin = inp.streams.video[0]
        vin.codec_context.thread_count = 1  # parallelism comes from the worker processes
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        h, w = scaled_size(vin.codec_context.height, vin.codec_context.width, short_side)
        # no B-frames: decode order = display order, which decord's frame seeking needs to stay fast
        options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "bf": "0"} if codec == "libx264" else {}
        vout = cast(VideoStream, out.add_stream(codec, rate=rate, options=options))
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.codec_context.gop_size = gop  # keyframe at least every `gop` frames
        time_base = Fraction(1) / Fraction(rate)
        n = 0
        for frame in inp.decode(vin):
            small = frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = n, time_base  # constant frame rate, in decode order
            out.mux(vout.encode(small))
            n += 1
        out.mux(vout.encode(None))
    return n


def _count_decoded(path: Path) -> int:
    """Frames that actually decode, with increasing timestamps (the verification of an output)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = 1
        pts = [frame.pts for frame in c.decode(stream)]
    if any(b is None or a is None or b <= a for a, b in zip(pts, pts[1:], strict=False)):
        raise ValueError("output frames lack increasing timestamps")
    return len(pts)


def transcode_video(
    src: str, dst: str | os.PathLike, short_side: int = 320, gop: int = 16, crf: int = 23, codec: str = "libx264"
) -> TranscodeResult:
    """Re-encode one video (see module docstring); never raises for a bad input: ``failed`` with the reason.

    Args:
        src: Any file PyAV reads.
        dst: Output ``.mp4``; skipped when it exists.
        short_side: Short side of the output (the aspect ratio is kept; sides even).
        gop: Largest distance between keyframes, in frames.
        crf: x264 constant rate factor (lower = larger files, better quality).
        codec: Encoder (``libx264``; another H.264 encoder where FFmpeg lacks it).
    """
    dst = Path(dst)
    if dst.exists():
        return TranscodeResult(src, str(dst), "skipped")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.stem + TEMP_SUFFIX)
    try:
        frames_in = _encode(src, tmp, short_side, gop, crf, codec)
        frames_out = _count_decoded(tmp)
        if abs(frames_out - frames_in) > 1:
            raise ValueError(f"output decodes {frames_out} frames, the input {frames_in}")
        os.replace(tmp, dst)  # atomic: `dst` exists only once it is complete and verified
    except Exception as err:  # any library error is this video's failure, reported by path
        tmp.unlink(missing_ok=True)
        return TranscodeResult(src, str(dst), "failed", reason=f"{type(err).__name__}: {err}")
    return TranscodeResult(src, str(dst), "done", frames_in, frames_out)


def _job(args: tuple[str, str, int, int, int, str]) -> TranscodeResult:
    return transcode_video(*args)


def _run(jobs: Sequence[tuple[str, str, int, int, int, str]], workers: int) -> Iterator[TranscodeResult]:
    """Results in input order; ``workers <= 1`` works in this process."""
    if workers <= 1:
        yield from map(_job, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_job, jobs)


def _progress(enabled: bool, total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(advance, close) of a rich progress bar, or no-ops."""
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("transcoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = bar.add_task("transcode", total=total)
    bar.start()
    return (lambda: bar.advance(task)), bar.stop


def _classes_beside(list_file: str) -> list[str] | None:
    """The input list's ``classes.txt`` names, to copy beside the new list (None if it has none)."""
    path = Path(list_file).parent / "classes.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def transcode_list(
    list_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    out_list: str | os.PathLike,
    root: str | os.PathLike | None = None,
    short_side: int = 320,
    gop: int = 16,
    crf: int = 23,
    workers: int | None = None,
    progress: bool = True,
    codec: str = "libx264",
) -> list[TranscodeResult]:
    """Transcode every video of a list into ``out_dir`` and write ``out_list`` (same labels, new paths).

    The folder layout below the videos' common folder is kept. Videos that fail are reported in
    the results and left out of the new list. Returns one result per distinct video, in list order.

    Raises:
        ValueError: ``short_side``/``gop`` below 1, or every video failed.
    """
    from smile.data.indexes.build import write_list
    from smile.data.indexes.common import VideoRecord
    from smile.data.listfile import read_video_list

    if short_side < 2 or gop < 1:
        raise ValueError(f"--short-side must be >= 2 and --gop >= 1, got {short_side} and {gop}")
    paths, labels = read_video_list(list_file, root, "--list")
    unique = list(dict.fromkeys(paths))
    in_root = os.path.commonpath([os.path.dirname(p) for p in unique])
    jobs = [(p, str(output_path(p, in_root, out_dir)), short_side, gop, crf, codec) for p in unique]
    workers = min(os.cpu_count() or 1, len(jobs)) if workers is None else min(int(workers), len(jobs))
    advance, close = _progress(progress, len(jobs))
    results: dict[str, TranscodeResult] = {}
    try:
        for result in _run(jobs, workers):
            results[result.src] = result
            advance()
    finally:
        close()
    kept = [
        VideoRecord(results[p].dst, label, "")
        for p, label in zip(paths, labels, strict=True)
        if results[p].status != "failed"
    ]
    if not kept:
        raise ValueError(f"no video of {list_file} could be transcoded: {next(iter(results.values())).reason}")
    write_list(kept, out_list, _classes_beside(os.fspath(list_file)))
    return list(results.values())
