"""The two decoder backends behind :mod:`smile.data.decoding`: decord (fast) and PyAV (fallback).

Each backend is a small reader class with one interface (:class:`Reader`): open a file, report its
frame count and :class:`VideoInfo`, decode a batch of frame numbers to uint8 RGB, close. The front
module (:mod:`smile.data.decoding`) picks the backend, checks indices and turns library errors into
:class:`VideoDecodeError`; the readers here only talk to their library.

* :class:`DecordReader`: ``VideoReader(num_threads=1)`` + ``get_batch``, the reference's reader
  (SPEC §2.2). One thread per reader because the DataLoader already parallelises across clips.
* :class:`PyAVReader`: sequential decode from the first frame; only the requested frames are
  converted to RGB and decoding stops after the last requested index. Slower for late clips in
  long videos, but it reads files decord cannot (and decord is not built for every platform).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
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
    """PyAV container; frames are decoded in order and only the wanted ones converted to RGB."""

    def __init__(self, path: str, size: tuple[int, int] | None) -> None:
        import av

        self.path, self.size = path, size
        self._container = av.open(path)
        try:
            if not self._container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # workers parallelise across clips
            self.num_frames = self._count_frames()
        except BaseException:
            self._container.close()
            raise

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

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Decode up to the last wanted frame, converting only the wanted ones: ``[N, H, W, 3]``."""
        wanted = set(indices.tolist())
        last = max(wanted)
        found: dict[int, np.ndarray] = {}
        decoded = 0
        for frame in self._container.decode(self._stream):
            if decoded in wanted:
                found[decoded] = self._to_rgb(frame)
            decoded += 1
            if decoded > last:
                break
        if len(found) < len(wanted):
            raise VideoDecodeError(
                f"{self.path}: stream ended after {decoded} decodable frames, "
                f"but the container claims {self.num_frames} (truncated?)"
            )
        return np.stack([found[i] for i in indices.tolist()])  # [N, H, W, 3]

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
