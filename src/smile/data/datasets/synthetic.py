"""Procedural motion videos: the project's file-free dataset (``data=synthetic``).

Demos and tests need video whose label can only be read from *motion*, so that a linear probe
after pretraining shows that the encoder learned motion rather than appearance. This module maps
a clip index to its label, seeds and names; :mod:`~smile.data.datasets.scenes` draws and renders
the two scenes:

- ``shapes`` (default): textured shapes move together in the labelled direction and speed over a
  smooth background that drifts in an unrelated direction. Positions live on a torus (shapes wrap
  around the borders).
- ``pan``: a camera pans over a random smooth-noise texture in the labelled direction and speed, so
  every token carries the motion. This is the demo's scene: a tiny encoder pretrained for a few
  minutes on the CPU shows the motion it learned under a linear probe (README, "The demo").

In both, colours, shapes and textures are drawn from a stream that never looks at the label, so
every single frame has the same appearance statistics for every class.

Determinism: clip ``index`` of split ``split`` is rendered from
``numpy.random.default_rng([seed, crc32(split), 0, index])`` only, so it is byte-identical across
instances, call orders, DataLoader workers and processes. Labels are stratified in blocks of
``num_classes`` consecutive indices (each block is a permutation drawn from
``default_rng([seed, crc32(split), 1, block])``), so any ``num_samples`` is balanced within one
clip per class and a clip never depends on ``num_samples``.
"""

from __future__ import annotations

import math
import operator
import zlib
from typing import Any, Literal, overload

import numpy as np
import torch
from torch.utils.data import Dataset

from smile.data.datasets.scenes import SCENES, render_scene, sample_scene, speed_levels, to_uint8

__all__ = ["SPLITS", "SyntheticVideoDataset", "direction_names", "speed_names", "split_id"]

SPLITS = ("train", "val", "test")
_COMPASS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


def split_id(split: str) -> int:
    """Stable split number (CRC32 of the name): Python's ``hash`` differs between processes."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return zlib.crc32(split.encode())


def direction_names(n: int) -> list[str]:
    """Compass names where they exist (angle 0 = right, 90 = down in image coordinates)."""
    if 8 % n == 0:
        return [_COMPASS[i * 8 // n] for i in range(n)]
    return [f"{round(360 * i / n)}deg" for i in range(n)]


def speed_names(n: int) -> list[str]:
    """Readable speed level names, slowest first."""
    return {1: ["any"], 2: ["slow", "fast"], 3: ["slow", "medium", "fast"]}.get(n, [f"speed{i}" for i in range(n)])


class SyntheticVideoDataset(Dataset):
    """Synthetic clips (moving shapes or a camera pan) whose label is their motion class.

    A dataset of whole clips; not :class:`smile.motion.SyntheticMotion`, SMILE's object overlay
    that augments clips of any dataset.

    Args:
        num_samples: Number of clips (the dataset length).
        num_frames: Frames per clip (T).
        img_size: Height and width in pixels (H = W).
        seed: Base seed; with ``split`` and the index it fixes a clip completely.
        num_directions: Evenly spaced directions; 4 gives right, down, left, up.
        num_speeds: Speed levels, geometric between the scene's speed range
            (:func:`~smile.data.datasets.scenes.speed_levels`).
        num_shapes: Foreground shapes per clip, all sharing the labelled motion (with jitter);
            ``shapes`` scene only.
        split: ``"train"``, ``"val"`` or ``"test"``; each has its own seed stream.
        scene: ``"shapes"`` (moving shapes) or ``"pan"`` (camera pan over a noise texture).
        repeats: Repeated sampling as in :class:`~smile.data.datasets.list.VideoListDataset`: one
            render gives ``R`` clips (``video [R, 3, T, H, W]``, ``label``/``index`` ``[R]``). The
            clips have no crop, so they are the same pixels; SMILE's objects and masks, drawn per
            clip on the device, still differ. 1 = one clip.

    Items are dicts ``video`` (uint8 ``[3, T, H, W]``), ``label`` and ``index`` (int64 scalars).
    The label is ``direction_index * num_speeds + speed_index``.
    """

    def __init__(
        self,
        num_samples: int = 512,
        num_frames: int = 16,
        img_size: int = 224,
        seed: int = 0,
        num_directions: int = 4,
        num_speeds: int = 2,
        num_shapes: int = 2,
        split: str = "train",
        scene: str = "shapes",
        repeats: int = 1,
    ) -> None:
        for name, value, low in (
            ("num_samples", num_samples, 1),
            ("num_frames", num_frames, 2),
            ("img_size", img_size, 16),
            ("seed", seed, 0),
            ("num_directions", num_directions, 1),
            ("num_speeds", num_speeds, 1),
            ("num_shapes", num_shapes, 1),
            ("repeats", repeats, 1),
        ):
            if int(value) < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
        self.scene = scene
        self._split_id = split_id(split)
        self.num_samples, self.num_frames, self.img_size = int(num_samples), int(num_frames), int(img_size)
        self.seed, self.split = int(seed), split
        self.num_directions, self.num_speeds, self.num_shapes = num_directions, num_speeds, num_shapes
        self.repeats = int(repeats)

    def __len__(self) -> int:
        return self.num_samples

    @property
    def num_classes(self) -> int:
        return self.num_directions * self.num_speeds

    @property
    def class_names(self) -> list[str]:
        """Names like ``"right-slow"``, in label order."""
        speeds = speed_names(self.num_speeds)
        return [d if self.num_speeds == 1 else f"{d}-{s}" for d in direction_names(self.num_directions) for s in speeds]

    def _check_index(self, index: int) -> int:
        index = operator.index(index)
        if index < 0:
            index += self.num_samples
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} clips")
        return index

    def label_of(self, index: int) -> int:
        """Label without rendering (stratified blocks, see module docstring)."""
        index = self._check_index(index)
        block, pos = divmod(index, self.num_classes)
        perm = np.random.default_rng([self.seed, self._split_id, 1, block]).permutation(self.num_classes)
        return int(perm[pos])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = self._check_index(index)
        video = self.render(index)
        label, idx = torch.tensor(self.label_of(index), dtype=torch.int64), torch.tensor(index, dtype=torch.int64)
        r = self.repeats
        if r > 1:  # one render, R clips: [R, 3, T, H, W] and [R]
            video, label, idx = video.expand(r, *video.shape).clone(), label.repeat(r), idx.repeat(r)
        return {"video": video, "label": label, "index": idx}

    def describe(self, index: int) -> dict[str, Any]:
        """The sampled parameters of clip ``index`` as plain Python values, for debugging and tests."""
        params = self._sample(self._check_index(index))
        return _to_python(params)

    @overload
    def render(self, index: int, return_masks: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def render(self, index: int, return_masks: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def render(self, index: int, return_masks: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...

    def render(self, index: int, return_masks: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Render clip ``index``; optionally also each shape's own coverage (before occlusion).

        Returns:
            video uint8 ``[3, T, H, W]``, and with ``return_masks`` float32 alpha ``[S, T, H, W]``
            (S = num_shapes), which tests use as ground truth for the motion.
        """
        p = self._sample(self._check_index(index))
        if self.scene == "pan" and return_masks:
            raise ValueError("return_masks needs scene='shapes' (a pan has no shapes)")
        T, S = self.num_frames, self.img_size
        masks = np.zeros((self.num_shapes, T, S, S), np.float32) if return_masks else None
        video = to_uint8(render_scene(p, T, S, masks))
        return (video, torch.from_numpy(masks)) if masks is not None else video

    def _sample(self, index: int) -> dict[str, Any]:
        """Draw every parameter from the per-clip stream; the label only steers the velocities."""
        rng = np.random.default_rng([self.seed, self._split_id, 0, index])
        label = self.label_of(index)
        d, s = divmod(label, self.num_speeds)
        angle = 2 * math.pi * d / self.num_directions
        speed = float(speed_levels(self.num_speeds, self.scene)[s]) * self.img_size
        scene = sample_scene(rng, self.scene, self.img_size, self.num_frames, self.num_shapes, angle, speed)
        return {
            "index": index,
            "label": label,
            "class_name": self.class_names[label],
            "direction_index": d,
            "speed_index": s,
            "angle_deg": math.degrees(angle),
            "speed_px": speed,
            **scene,
        }


def _to_python(value: Any) -> Any:
    """Numpy containers to plain Python, so ``describe`` output prints and compares cleanly."""
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value
