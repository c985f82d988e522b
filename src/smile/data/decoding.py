"""Read selected frames of a video file: the one ``read_frames(path, indices)`` interface (DESIGN §2).

Datasets decode only the frames a clip needs, at native or reduced resolution, and hand back
uint8 RGB arrays ``[N, H, W, 3]`` so DataLoader workers stay cheap (DESIGN §4). This module picks
the backend and owns the checks and error messages; the readers live in :mod:`smile.data.backends`.

Backends:

* ``decord``: fast random access (the reference's reader, SPEC §2.2).
* ``pyav``: seek to the keyframe before the window, decode forward; for files decord cannot read or
  platforms without decord.
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

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np

from smile.data.backends import READERS, DecordReader, Reader, VideoDecodeError, VideoInfo, decord_available

__all__ = ["BACKENDS", "Backend", "VideoDecodeError", "VideoInfo", "read_clip", "read_frames", "video_info"]

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS = ("auto", "decord", "pyav")


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
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(f"{path}: permission denied (this user cannot read the file)")


def _check_indices(path: str, indices: np.ndarray, num_frames: int) -> None:
    if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
        bad = indices[(indices < 0) | (indices >= num_frames)]
        raise IndexError(
            f"{path}: frame indices {bad.tolist()[:8]} out of range for a video with "
            f"{num_frames} frames (samplers must clamp to the last frame)"
        )


def _candidates(backend: str) -> tuple[str, ...]:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return ("decord", "pyav") if backend == "auto" else (backend,)


def _with_reader(
    path: str | os.PathLike, backend: str, size: tuple[int, int] | None, use: Callable[[Reader], Any]
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
    if not decord_available():
        if backend == "decord":
            raise ImportError("backend='decord' but decord is not installed; use backend='pyav' or 'auto'")
        names = tuple(n for n in names if n != "decord")
    reasons = []
    for name in names:
        try:
            with _guard(path, name, "open the file"):
                reader = READERS[name](path, size)
            try:
                return use(reader)
            finally:
                reader.close()
        except VideoDecodeError as err:
            reasons.append(str(err))
            if name != names[-1]:
                log.debug("%s; trying the next backend", err)
    raise VideoDecodeError(reasons[0] if len(reasons) == 1 else " | ".join(reasons))


def _read(reader: Reader, indices: np.ndarray, name: str) -> np.ndarray:
    """Bounds-check, then decode; an empty request returns ``[0, H, W, 3]`` without decoding."""
    path = reader.path
    _check_indices(path, indices, reader.num_frames)
    if indices.size == 0:
        info = reader.info
        return np.empty((0, info.height, info.width, 3), np.uint8)
    with _guard(path, name, f"decode frames {indices.tolist()[:4]}..."):
        return np.ascontiguousarray(reader.get(indices), dtype=np.uint8)


def _info(reader: Reader, name: str) -> VideoInfo:
    with _guard(reader.path, name, "read stream info"):
        return reader.info


def _backend_name(reader: Reader) -> str:
    return "decord" if isinstance(reader, DecordReader) else "pyav"


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

    def use(reader: Reader) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(choose(reader.num_frames), dtype=np.int64).reshape(-1)
        return _read(reader, idx, _backend_name(reader)), idx

    return _with_reader(path, backend, size, use)
