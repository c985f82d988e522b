"""The two decoder backends behind :mod:`smile.data.decoding`: decord (fast) and PyAV (fallback).

Each backend is a small reader class with one interface (:class:`Reader`): open a file, report its
frame count and :class:`VideoInfo`, decode a batch of frame numbers to uint8 RGB, close. The front
module (:mod:`smile.data.decoding`) picks the backend, checks indices and turns library errors into
:class:`VideoDecodeError`; the readers here only talk to their library.

* :class:`DecordReader`: ``VideoReader(num_threads=1)`` + ``get_batch``, the reference's reader
  (SPEC §2.2). One thread per reader because the DataLoader already parallelises across clips.
* :class:`PyAVReader`: seeks to the keyframe at or before the window, decodes forward (frame
  index from pts), converts only the requested frames to RGB and stops after the last one; files
  whose pts do not map to frame numbers (variable rate) are decoded from the first frame instead.
  It reads files decord cannot (and decord is not built for every platform).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

__all__ = ["READERS", "DecordReader", "PyAVReader", "Reader", "VideoDecodeError", "VideoInfo", "decord_available"]


class VideoDecodeError(RuntimeError):
    """A video file cannot be decoded; the message names the path and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about a video (dimensions after any decode-time resize)."""

    num_frames: int
    fps: float
    height: int
    width: int


class Reader(Protocol):
    """An open video: what the front module needs from any backend."""

    path: str
    num_frames: int

    @property
    def info(self) -> VideoInfo: ...

    def get(self, indices: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class DecordReader:
    """decord ``VideoReader`` with one thread; random access via ``get_batch``."""

    def __init__(self, path: str, size: tuple[int, int] | None) -> None:
        import decord  # optional dependency (no wheels for every platform)

        h, w = size if size is not None else (-1, -1)
        self.path, self.size = path, size
        self._vr = decord.VideoReader(path, num_threads=1, width=w, height=h)
        self.num_frames = len(self._vr)  # from the container index, no decoding
        if self.num_frames <= 0:
            raise VideoDecodeError(f"{path}: decord found no video frames")

    @property
    def info(self) -> VideoInfo:
        """decord has no size query, so native dims cost one decoded frame (only asked for here)."""
        h, w = self.size if self.size is not None else self._vr[0].shape[:2]
        return VideoInfo(self.num_frames, float(self._vr.get_avg_fps()), int(h), int(w))

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Decode ``indices`` in one batch call: uint8 RGB ``[N, H, W, 3]``."""
        return self._vr.get_batch(indices.tolist()).asnumpy()  # [N, H, W, 3] uint8 RGB

    def close(self) -> None:
        """Drop the reader so decord frees its demuxer and decoder now, not at garbage collection."""
        del self._vr


class PyAVReader:
    """PyAV container: seek to the keyframe before the window, decode forward, convert only the wanted frames.

    A frame's index comes from its pts, ``(pts - start_time) * time_base * average_rate``. Where that
    mapping is missing or proves unreliable (no rate or start time, a frame without pts, indices that
    are not consecutive: variable frame rate), the reader reopens the file and counts frames from
    the start instead, so either way frame ``k`` is the ``k``-th frame the decoder outputs.
    """

    def __init__(self, path: str, size: tuple[int, int] | None) -> None:
        self.path, self.size = path, size
        self._open()
        try:
            if not self._container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            self.num_frames = self._count_frames()
            self._seekable = self._pts_mapping() is not None
        except BaseException:
            self._container.close()
            raise

    def _open(self) -> None:
        import av

        self._container = av.open(self.path)
        if self._container.streams.video:
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # workers parallelise across clips

    @property
    def info(self) -> VideoInfo:
        """Size from the codec context and rate from the stream header: no frame is decoded."""
        ctx = self._stream.codec_context
        h, w = self.size if self.size is not None else (ctx.height, ctx.width)
        rate = self._stream.average_rate or self._stream.guessed_rate
        return VideoInfo(self.num_frames, float(rate) if rate else 0.0, int(h), int(w))

    def _count_frames(self) -> int:
        """Header frame count, else one demux pass counting packets (no decoding)."""
        n = self._stream.frames
        if n <= 0:
            n = sum(1 for p in self._container.demux(self._stream) if p.size > 0)
            self._container.seek(0, stream=self._stream)
        if n <= 0:
            raise VideoDecodeError(f"{self.path}: PyAV found no video frames")
        return int(n)

    def _pts_mapping(self) -> tuple[int, Fraction] | None:
        """``(start pts, frames per pts tick)`` exactly, or None where the header lacks what it needs."""
        s = self._stream
        if s.start_time is None or not s.average_rate or not s.time_base:
            return None
        return int(s.start_time), Fraction(s.time_base) * Fraction(s.average_rate)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Decode the window ``[min, max]`` of ``indices``, converting only the wanted frames: ``[N, H, W, 3]``."""
        wanted = set(indices.tolist())
        found = self._seek_decode(wanted) if self._seekable else None
        if found is None:  # no pts mapping, or it failed: count frames from the start
            self._seekable = False
            self._container.close()
            self._open()
            found = self._sequential_decode(wanted)
        return np.stack([found[i] for i in indices.tolist()])  # [N, H, W, 3]

    def _seek_decode(self, wanted: set[int]) -> dict[int, np.ndarray] | None:
        """Seek to the keyframe at or before the first wanted frame, then decode forward by pts.

        Returns None where the pts do not map to consecutive indices (caller falls back).
        """
        mapping = self._pts_mapping()
        assert mapping is not None
        start, per_tick = mapping
        first, last = min(wanted), max(wanted)
        target = start + math.floor(first / per_tick)  # pts of the first wanted frame (never after it)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        found: dict[int, np.ndarray] = {}
        prev = None
        for frame in self._container.decode(self._stream):
            if frame.pts is None:
                return None
            pos = (frame.pts - start) * per_tick
            k = round(pos)
            if abs(pos - k) > 0.25 or (prev is None and k > first) or (prev is not None and k != prev + 1):
                return None  # landed after the window, or pts gaps/jitter: variable frame rate
            prev = k
            if k in wanted:
                found[k] = self._to_rgb(frame)
            if k >= last:
                return found
        if prev is None:
            return None
        raise VideoDecodeError(
            f"{self.path}: stream ended at frame {prev}, but the container claims {self.num_frames} (truncated?)"
        )

    def _sequential_decode(self, wanted: set[int]) -> dict[int, np.ndarray]:
        """Decode from the first frame, counting frames, up to the last wanted one."""
        last = max(wanted)
        found: dict[int, np.ndarray] = {}
        decoded = 0
        for frame in self._container.decode(self._stream):
            if decoded in wanted:
                found[decoded] = self._to_rgb(frame)
            decoded += 1
            if decoded > last:
                return found
        raise VideoDecodeError(
            f"{self.path}: stream ended after {decoded} decodable frames, "
            f"but the container claims {self.num_frames} (truncated?)"
        )

    def _to_rgb(self, frame: Any) -> np.ndarray:
        if self.size is None:
            return frame.to_ndarray(format="rgb24")
        h, w = self.size
        return frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()

    def close(self) -> None:
        """Close the container (and its file handle) at once; workers open many files."""
        self._container.close()


READERS: dict[str, Callable[[str, tuple[int, int] | None], Reader]] = {
    "decord": DecordReader,
    "pyav": PyAVReader,
}


@functools.cache
def decord_available() -> bool:
    """Whether decord imports here (asked once per process: ``auto`` then skips it quietly)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True
