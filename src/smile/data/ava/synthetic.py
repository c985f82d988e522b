"""A tiny synthetic AVA, written in the published v2.2 formats, whose action labels are learnable from motion.

Each video shows persons (filled rectangles of distinct colours) on a noise background. Each
person has one motion, mapped onto a real AVA action id (a stand-in, chosen pose/movement-like):

========== =================== ==========================================================
motion     AVA id (name)       what the rectangle does
========== =================== ==========================================================
up         7 jump/leap         moves up 16 px per second (box centre y decreases)
down       5 fall down         moves down 16 px per second (centre y increases)
still      12 stand            does not move
sideways   14 walk             moves right 12 px per second (centre x increases)
========== =================== ==========================================================

The motion is a sawtooth of period one second (:func:`motion_offset`): a person moves steadily
through each keyframe and jumps back half-way between keyframes, so every clip centred on a
keyframe shows the motion whatever the video's length, and the person stays in its lane.

Some persons also flash (colour inverted every 4 frames): second label 69 "hand wave", so the
set is multi-label. Frames follow the AVA convention of :mod:`smile.data.ava.files`: file ``k`` of
``frames/<video_id>/<video_id>_<k:06d>.jpg`` is second ``900 + (k - 1) / 30``; keyframes are the
seconds ``902 .. 900 + seconds - 1``. The last ``val_videos`` videos are the val split, the others train.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from smile.data.ava.files import FPS, WINDOW_START_S, frame_path, keyframe_index

WIDTH, HEIGHT = 64, 48
BOX_W, BOX_H = 10, 14
MOTIONS: dict[str, int] = {"up": 7, "down": 5, "still": 12, "sideways": 14}
FLASH_ID = 69
ACTION_NAMES: dict[int, str] = {5: "fall down", 7: "jump/leap", 12: "stand", 14: "walk", 69: "hand wave"}
_COLOURS = np.array([[220, 30, 30], [30, 200, 40], [40, 60, 230], [230, 210, 20]], np.uint8)
_FLASH_PERIOD = 4


@dataclass(frozen=True)
class SyntheticAva:
    """Paths of a written synthetic AVA.

    Attributes:
        root: The root folder.
        frames: ``<root>/frames`` (``<video_id>/<video_id>_<k:06d>.jpg``).
        train_csv: ``ava_train_v2.2.csv``.
        val_csv: ``ava_val_v2.2.csv``.
        label_map: ``ava_action_list_v2.2_for_activitynet_2019.pbtxt`` (the used classes only).
        excluded_csv: ``ava_train_excluded_timestamps_v2.2.csv`` (one keyframe).
        val_excluded_csv: ``ava_val_excluded_timestamps_v2.2.csv`` (empty: every val keyframe is
            evaluated; written so that configs naming the published val file work unchanged).
        train_proposals: ``ava_dense_proposals_train.FAIR.recall_93.9.pkl``.
        val_proposals: ``ava_dense_proposals_val.FAIR.recall_93.9.pkl``.
        train_videos: Train video ids.
        val_videos: Val video ids.
        excluded: The excluded ``(video_id, second)`` (absent from the annotations and proposals).
    """

    root: Path
    frames: Path
    train_csv: Path
    val_csv: Path
    label_map: Path
    excluded_csv: Path
    val_excluded_csv: Path
    train_proposals: Path
    val_proposals: Path
    train_videos: tuple[str, ...]
    val_videos: tuple[str, ...]
    excluded: tuple[str, int]


TRAVEL: dict[str, tuple[float, float]] = {"up": (0, -16), "down": (0, 16), "still": (0, 0), "sideways": (12, 0)}


def motion_offset(motion: str, frames: np.ndarray) -> np.ndarray:
    """Offset ``[n, 2]`` (x, y pixels) of a person from its base position at the 0-based ``frames``.

    A sawtooth of period ``FPS`` frames: about 0 at the keyframes (frames ``0 mod 30``), rising
    through them, back to -0.5 x travel at frames ``15 mod 30`` (half-way between two keyframes).
    """
    phase = ((np.asarray(frames) + FPS // 2) % FPS) / (FPS - 1) - 0.5  # [n] in [-0.5, 0.5]
    return phase[:, None] * np.array(TRAVEL[motion])  # [n, 2]


def _tracks(rng: np.random.Generator, n_frames: int) -> tuple[list[str], np.ndarray]:
    """Motions (shuffled) and per-frame top-left corners ``[P, n_frames, 2]`` (x, y) in pixels."""
    motions = list(MOTIONS)
    rng.shuffle(motions)
    span_y = HEIGHT - BOX_H - 2
    xy = np.zeros((len(motions), n_frames, 2))
    for p, motion in enumerate(motions):
        x0 = 1 + p * (WIDTH - BOX_W - 2) / (len(motions) - 1) + rng.uniform(-1, 1)
        y0 = rng.uniform(1 + 8, span_y - 8)  # room for the vertical travel
        xy[p] = np.array([x0, y0]) + motion_offset(motion, np.arange(n_frames))
    return motions, np.clip(xy, 0, [WIDTH - BOX_W, HEIGHT - BOX_H])


def _box(xy: np.ndarray) -> tuple[float, float, float, float]:
    x, y = float(xy[0]), float(xy[1])
    return x / WIDTH, y / HEIGHT, (x + BOX_W) / WIDTH, (y + BOX_H) / HEIGHT


def _write_frames(folder: Path, video_id: str, xy: np.ndarray, flash: np.ndarray, rng: np.random.Generator) -> None:
    background = rng.integers(60, 190, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(xy.shape[1]):
        img = background.copy()
        for p in range(xy.shape[0]):
            x, y = np.rint(xy[p, k]).astype(int)
            colour = _COLOURS[p % len(_COLOURS)]
            if flash[p] and (k // _FLASH_PERIOD) % 2:
                colour = 255 - colour
            img[y : y + BOX_H, x : x + BOX_W] = colour
        Image.fromarray(img).save(frame_path(folder.parent, video_id, k), quality=90)


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def write_synthetic_ava(
    root: str | Path, num_videos: int = 2, seconds: int = 5, seed: int = 0, val_videos: int = 1
) -> SyntheticAva:
    """Write a synthetic AVA under ``root`` (see the module docstring).

    Args:
        root: Output folder (created).
        num_videos: Videos (>= 2): the last ``val_videos`` are val, the others train.
        seconds: Seconds of frames per video from second 900 (>= 4: keyframes 902..900+seconds-1).
        seed: Random seed (layout, colours' order, flashing, noise, proposal jitter).
        val_videos: Videos of the val split (1 <= val_videos < num_videos).

    Returns:
        The written paths and splits.

    Raises:
        ValueError: ``num_videos < 2``, ``seconds < 4`` or ``val_videos`` out of range.
    """
    if num_videos < 2 or seconds < 4 or not 1 <= val_videos < num_videos:
        raise ValueError(
            f"need num_videos >= 2, seconds >= 4 and 1 <= val_videos < num_videos, got {num_videos}, {seconds} "
            f"and {val_videos}"
        )
    root = Path(root)
    frames, ann = root / "frames", root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    videos = [f"synth{i:06d}" for i in range(num_videos)]
    keyframes = list(range(WINDOW_START_S + 2, WINDOW_START_S + seconds))
    excluded = (videos[0], keyframes[-1])
    rows: dict[str, list[str]] = {"train": [], "val": []}
    proposals: dict[str, dict[str, np.ndarray]] = {"train": {}, "val": {}}
    for v, video_id in enumerate(videos):
        split = "val" if v >= num_videos - val_videos else "train"
        motions, xy = _tracks(rng, seconds * FPS)
        flash = rng.random(len(motions)) < 0.5
        flash[rng.integers(len(motions))] = True  # at least one multi-label person per video
        _write_frames(frames / video_id, video_id, xy, flash, rng)
        for sec in keyframes:
            if (video_id, sec) == excluded:
                continue
            boxes = []
            for p, motion in enumerate(motions):
                box = _box(xy[p, keyframe_index(sec)])
                boxes.append(box)
                for action in [MOTIONS[motion]] + ([FLASH_ID] if flash[p] else []):
                    rows[split].append(",".join([video_id, f"{sec:04d}", *map(_fmt, box), str(action), str(p)]))
            gt = np.array(boxes) + rng.normal(0, 0.01, (len(boxes), 4))
            fp = np.sort(rng.uniform(0, 1, (2, 2)), axis=0).T.reshape(1, 4)[:, [0, 2, 1, 3]]  # x1 y1 x2 y2
            scores = np.concatenate([rng.uniform(0.85, 1.0, len(boxes)), rng.uniform(0.1, 0.5, 1)])
            dets = np.concatenate([np.clip(np.concatenate([gt, fp]), 0, 1), scores[:, None]], axis=1)
            proposals[split][f"{video_id},{sec:04d}"] = dets.astype(np.float32)
    paths = {s: ann / f"ava_{s}_v2.2.csv" for s in ("train", "val")}
    props = {s: ann / f"ava_dense_proposals_{s}.FAIR.recall_93.9.pkl" for s in ("train", "val")}
    for s in ("train", "val"):
        paths[s].write_text("".join(r + "\n" for r in rows[s]))
        with props[s].open("wb") as f:
            pickle.dump(proposals[s], f, protocol=2)
    label_map = ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    label_map.write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in sorted(ACTION_NAMES.items())))
    excluded_csv = ann / "ava_train_excluded_timestamps_v2.2.csv"
    excluded_csv.write_text(f"{excluded[0]},{excluded[1]:04d}\n")
    val_excluded_csv = ann / "ava_val_excluded_timestamps_v2.2.csv"
    val_excluded_csv.write_text("")
    return SyntheticAva(
        root=root,
        frames=frames,
        train_csv=paths["train"],
        val_csv=paths["val"],
        label_map=label_map,
        excluded_csv=excluded_csv,
        val_excluded_csv=val_excluded_csv,
        train_proposals=props["train"],
        val_proposals=props["val"],
        train_videos=tuple(videos[: num_videos - val_videos]),
        val_videos=tuple(videos[num_videos - val_videos :]),
        excluded=excluded,
    )
