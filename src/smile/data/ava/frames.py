"""The frames of AVA keyframe clips, from the published JPEG folders or from the 15-minute cut videos.

Kept apart from :mod:`smile.data.ava.dataset` so the dataset reads as "which items, which boxes,
which transforms" while this module owns the file system: where each video's frames are, how many
there are, and which of them a clip shows. A clip of keyframe ``second`` holds ``num_frames``
frames ``sampling_rate`` apart centred on the keyframe (:mod:`smile.data.ava.files`' convention),
clamped to the video. JPEG folders are ``<frames>/<video_id>/<video_id>_<k:06d>.jpg``; a cut
video's time 0 is AVA second 900, read at the video's own frame rate.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from smile.data.ava.files import FPS, clip_frame_paths, count_frames, keyframe_index
from smile.data.decoding import Backend, VideoInfo, read_frames, video_info

__all__ = ["AvaFrames", "FrameSource"]

FrameSource = Literal["jpg", "video"]
_SHOWN = 5  # missing videos named in an error message


class AvaFrames:
    """Reads the uint8 frames of AVA keyframe clips for a fixed set of videos.

    Every video is located once, at construction, so a missing folder or file fails before
    training starts, with all missing videos in one message. Frame counts (JPEG) and stream info
    (videos) are read on first use per video and cached in the process (each DataLoader worker
    keeps its own cache).

    Args:
        frames: Root of the ``<video_id>/`` JPEG folders, or of the videos (``frame_source="video"``).
        video_ids: The videos whose clips will be read.
        num_frames: Clip frames T.
        sampling_rate: Stride between clip frames (in 30 fps frames).
        frame_source: ``"jpg"`` (frame folders) or ``"video"`` (cut videos).
        video_pattern: Video file name under ``frames`` (``frame_source="video"``); glob characters
            allowed, the match must be unique.
        backend: Video decoder (``auto``, ``decord``, ``pyav``).

    Raises:
        FileNotFoundError: A folder or video is missing (names how many and the first few).
        ValueError: ``video_pattern`` matches more than one file for a video.
    """

    def __init__(
        self,
        frames: Path,
        video_ids: Iterable[str],
        num_frames: int,
        sampling_rate: int,
        frame_source: FrameSource = "jpg",
        video_pattern: str = "{video_id}.*",
        backend: Backend = "auto",
    ) -> None:
        self.frames, self.frame_source, self.backend = Path(frames), frame_source, backend
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.videos = self._locate(dict.fromkeys(video_ids), video_pattern)
        self._counts: dict[str, int] = {}  # frames per JPEG folder, this process
        self._infos: dict[str, VideoInfo] = {}  # stream info per video, this process

    def _locate(self, video_ids: Iterable[str], pattern: str) -> dict[str, Path]:
        """Each video's folder or file; every missing one is reported in one message."""
        found: dict[str, Path] = {}
        missing: list[str] = []
        for vid in video_ids:
            if self.frame_source == "jpg":
                path = self.frames / vid
                hits = [path] if path.is_dir() else []
            else:
                query = Path(glob.escape(str(self.frames))) / pattern.format(video_id=glob.escape(vid))
                hits = sorted(Path(p) for p in glob.glob(str(query)))
            if len(hits) > 1:
                raise ValueError(
                    f"AvaClipDataset video_pattern {pattern!r} matches {len(hits)} files for {vid} ({hits[:3]}): "
                    "make the pattern unique, e.g. '{video_id}.mp4'"
                )
            if hits:
                found[vid] = hits[0]
            else:
                missing.append(vid)
        if missing:
            what = "frame folders <frames>/<video_id>/" if self.frame_source == "jpg" else f"videos {pattern!r}"
            raise FileNotFoundError(
                f"{len(missing)} of {len(missing) + len(found)} AVA {what} missing under {self.frames} "
                f"(first: {', '.join(missing[:_SHOWN])}); download/extract them or run smile-data check-ava"
            )
        return found

    def clip_indices(self, second: int) -> np.ndarray:
        """AVA (30 fps, 0-based) frame indices of the clip of keyframe ``second``, before clamping: ``[T]``."""
        centre, half = keyframe_index(second), self.num_frames * self.sampling_rate // 2
        return np.arange(centre - half, centre + half, self.sampling_rate)

    def load(self, vid: str, second: int) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]``: the clip of keyframe ``(vid, second)`` at the source's resolution."""
        return (self._load_jpg if self.frame_source == "jpg" else self._load_video)(vid, second)

    def _check_keyframe(self, vid: str, second: int, frame: int, total: int) -> None:
        """A keyframe past the source's end would silently show another moment: name it instead."""
        if frame >= total:
            raise ValueError(
                f"keyframe {vid},{second:04d} is frame {frame} but {self.videos[vid]} has only {total} frames: "
                "the frames or the video are incomplete; re-extract them (smile-data check-ava lists such videos)"
            )

    def _load_jpg(self, vid: str, second: int) -> torch.Tensor:
        if vid not in self._counts:
            self._counts[vid] = count_frames(self.frames, vid)
        self._check_keyframe(vid, second, keyframe_index(second), self._counts[vid])
        paths = clip_frame_paths(self.frames, vid, second, self.num_frames, self.sampling_rate, self._counts[vid])
        decoded = {}
        for p in dict.fromkeys(paths):  # clamped clips repeat frames: decode each once
            try:
                with Image.open(p) as img:
                    decoded[p] = np.asarray(img.convert("RGB"))  # [H, W, 3]
            except OSError as e:
                raise ValueError(f"AVA frame {p} (keyframe {vid},{second:04d}) is not a readable JPEG: {e}") from None
        return torch.from_numpy(np.stack([decoded[p] for p in paths])).permute(0, 3, 1, 2)  # [T, 3, H, W]

    def _load_video(self, vid: str, second: int) -> torch.Tensor:
        path = self.videos[vid]
        if vid not in self._infos:
            self._infos[vid] = video_info(path, self.backend)
        info = self._infos[vid]
        self._check_keyframe(vid, second, round(keyframe_index(second) / FPS * info.fps), info.num_frames)
        times = np.maximum(self.clip_indices(second), 0) / FPS  # [T] seconds since the cut's start (AVA second 900)
        idx = np.clip(np.rint(times * info.fps).astype(np.int64), 0, info.num_frames - 1)  # [T]
        return torch.from_numpy(read_frames(path, idx, self.backend)).permute(0, 3, 1, 2)  # [T, 3, H, W]
