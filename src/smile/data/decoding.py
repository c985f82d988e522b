"""Read selected frames of a video file with decord (fast, random access) or PyAV (fallback).

Datasets decode only the frames a clip needs, at native or reduced resolution, and hand back
uint8 RGB arrays ``[N, H, W, 3]`` so DataLoader workers stay cheap (DESIGN §4).

Backends:

* ``decord``: ``VideoReader(num_threads=1)`` + ``get_batch``, the reference's reader (SPEC §2.2).
  One thread per reader because the DataLoader already parallelises across clips.
* ``pyav``: sequential decode from the first frame; only the requested frames are converted to
  RGB and decoding stops after the last requested index. Slower for late clips in long videos,
  but it reads files decord cannot (and decord is not built for every platform).
* ``auto``: decord, then PyAV if decord is missing or fails on this file.

Errors say *which* file failed and *why*:

* :class:`VideoDecodeError` (a ``RuntimeError``): the file is missing, empty, unreadable,
  corrupt, or has fewer decodable frames than its header claims. Datasets count and skip these.
* ``IndexError``: a requested index lies outside ``[0, num_frames)``. That is a caller bug (the
  *sampler* clamps indices to the last frame), so it is never treated as a bad video.

Resizing at decode time (``size=(h, w)``) uses each library's own scaler (decord: ffmpeg scale
filter; PyAV: swscale bilinear), so the two backends agree exactly only at native resolution.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS = ("auto", "decord", "pyav")


class VideoDecodeError(RuntimeError):
    """A video file cannot be decoded; the message names the path and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about a video (dimensions after any decode-time resize)."""

    num_frames: int
    fps: float
    height: int
    width: int


class _Reader(Protocol):
    path: str
    num_frames: int

    @property
    def info(self) -> VideoInfo: ...

    def get(self, indices: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@contextmanager
def _guard(path: str, backend: str, what: str) -> Iterator[None]:
    """Turn any library error during ``what`` into a VideoDecodeError that names file and backend.

    IndexError (caller bug) and MemoryError pass through unchanged.
    """
    try:
        yield
    except (VideoDecodeError, IndexError, MemoryError):
        raise
    except Exception as err:  # decord and PyAV raise assorted RuntimeError/ValueError subclasses
        raise VideoDecodeError(f"{path}: {backend} failed to {what}: {type(err).__name__}: {err}") from err


def _check_file(path: str) -> None:
    """Fail fast with a clear message before handing the path to a C library."""
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: file does not exist")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")


def _check_indices(path: str, indices: np.ndarray, num_frames: int) -> None:
    if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
        bad = indices[(indices < 0) | (indices >= num_frames)]
        raise IndexError(
            f"{path}: frame indices {bad.tolist()[:8]} out of range for a video with "
            f"{num_frames} frames (samplers must clamp to the last frame)"
        )


class _DecordReader:
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
        return self._vr.get_batch(indices.tolist()).asnumpy()  # [N, H, W, 3] uint8 RGB

    def close(self) -> None:
        del self._vr


class _PyAVReader:
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
        self._container.close()


_READERS: dict[str, Callable[[str, tuple[int, int] | None], _Reader]] = {
    "decord": _DecordReader,
    "pyav": _PyAVReader,
}


def _candidates(backend: str) -> tuple[str, ...]:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return ("decord", "pyav") if backend == "auto" else (backend,)


def _with_reader(
    path: str | os.PathLike, backend: str, size: tuple[int, int] | None, use: Callable[[_Reader], Any]
) -> Any:
    """Open ``path`` with the first backend that works and return ``use(reader)``.

    Only decode failures (VideoDecodeError) move ``auto`` on to the next backend; errors raised by
    ``use`` itself (e.g. IndexError from a bad sampler) propagate at once.
    """
    path = os.fspath(path)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (height, width) with positive sides, got {size!r}")
    _check_file(path)
    names = _candidates(backend)
    if not _decord_available():
        if backend == "decord":
            raise ImportError("backend='decord' but decord is not installed; use backend='pyav' or 'auto'")
        names = tuple(n for n in names if n != "decord")
    reasons = []
    for name in names:
        try:
            with _guard(path, name, "open the file"):
                reader = _READERS[name](path, size)
            try:
                return use(reader)
            finally:
                reader.close()
        except VideoDecodeError as err:
            reasons.append(str(err))
            if name != names[-1]:
                log.debug("%s; trying the next backend", err)
    raise VideoDecodeError(reasons[0] if len(reasons) == 1 else " | ".join(reasons))


@functools.cache
def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _read(reader: _Reader, indices: np.ndarray, name: str) -> np.ndarray:
    """Bounds-check, then decode; an empty request returns ``[0, H, W, 3]`` without decoding."""
    path = reader.path
    _check_indices(path, indices, reader.num_frames)
    if indices.size == 0:
        info = reader.info
        return np.empty((0, info.height, info.width, 3), np.uint8)
    with _guard(path, name, f"decode frames {indices.tolist()[:4]}..."):
        return np.ascontiguousarray(reader.get(indices), dtype=np.uint8)


def _info(reader: _Reader, name: str) -> VideoInfo:
    with _guard(reader.path, name, "read stream info"):
        return reader.info


def _backend_name(reader: _Reader) -> str:
    return "decord" if isinstance(reader, _DecordReader) else "pyav"


def video_info(path: str | os.PathLike, backend: Backend = "auto") -> VideoInfo:
    """Frame count, fps and native size of a video, as the chosen backend sees them.

    Raises:
        VideoDecodeError: Missing, empty or undecodable file.
    """
    return _with_reader(path, backend, None, lambda r: _info(r, _backend_name(r)))


def read_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    backend: Backend = "auto",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed).

    Args:
        path: Video file.
        indices: 0-based frame numbers, each in ``[0, num_frames)``.
        backend: ``"auto"`` (decord, then PyAV), ``"decord"`` or ``"pyav"``.
        size: Optional ``(height, width)`` to resize to while decoding (cheaper than later).

    Returns:
        uint8 RGB array ``[len(indices), H, W, 3]``.

    Raises:
        VideoDecodeError: Missing, empty, corrupt or truncated file.
        IndexError: An index outside the video (clamping is the sampler's job).
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    return _with_reader(path, backend, size, lambda r: _read(r, idx, _backend_name(r)))


def read_clip(
    path: str | os.PathLike,
    choose: Callable[[int], np.ndarray],
    backend: Backend = "auto",
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Open the file once, pick indices from its frame count, decode them.

    Saves the second open (and index parse) that ``video_info`` + ``read_frames`` would cost. With
    ``auto``, ``choose`` may be called once per backend tried, so it must be a pure function of
    the frame count (build its RNG inside, from a fixed seed).

    Args:
        choose: ``num_frames -> int indices``, e.g. a partial of :func:`pretrain_indices`.

    Returns:
        frames uint8 ``[N, H, W, 3]`` and the int64 indices ``[N]`` that were decoded.
    """

    def use(reader: _Reader) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(choose(reader.num_frames), dtype=np.int64).reshape(-1)
        return _read(reader, idx, _backend_name(reader)), idx

    return _with_reader(path, backend, size, use)
