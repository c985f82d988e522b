"""The seam between the data module and a synthetic-motion overlay: its parameters and its protocol.

The data module never needs to know how objects are drawn or pasted; it asks a :class:`Motion` for
the cheap random numbers of the global batch (:meth:`Motion.sample`, on the CPU, so every rank draws
the same ones), keeps its own rows (:meth:`MotionParams.select`) and has them pasted into its clips
on the device (:meth:`Motion.apply`). The boxes in :class:`MotionParams` also feed trajectory-aware
masking, which is why they are part of the contract and not an implementation detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["NO_OBJECT", "Motion", "MotionParams"]

NO_OBJECT = -1.0e4  # every box coordinate of a clip that got no objects (p < 1): far outside any frame


@dataclass
class MotionParams:
    """Everything random about one batch's overlay (cheap numbers, sampled on the CPU).

    Attributes:
        boxes: float32 ``[B, K, T, 4]`` (``NO_OBJECT`` everywhere for clips without objects).
        angles: float32 ``[B, K, T]`` degrees, clockwise.
        sprite_ids: int64 ``[B, K]`` indices into the object bank.
        present: bool ``[B]``: the clip gets objects (``p``).
    """

    boxes: Tensor
    angles: Tensor
    sprite_ids: Tensor
    present: Tensor

    def select(self, rows: slice | Tensor) -> MotionParams:
        """The parameters of some clips (e.g. one rank's rows ``slice(rank, None, world)``)."""
        return MotionParams(self.boxes[rows], self.angles[rows], self.sprite_ids[rows], self.present[rows])

    def to(self, device: torch.device | str) -> MotionParams:
        """The same parameters on ``device`` (copies are asynchronous from pinned memory)."""
        return MotionParams(
            *(x.to(device, non_blocking=True) for x in (self.boxes, self.angles, self.sprite_ids, self.present))
        )


@runtime_checkable
class Motion(Protocol):
    """A batched on-device object overlay, as :class:`~smile.data.datamodule.VideoDataModule` uses it.

    :class:`~smile.motion.SyntheticMotion` (SMILE's overlay) is the implementation; anything with
    these two methods can replace it (e.g. a different object source or compositor).
    """

    def sample(
        self,
        batch_size: int,
        num_frames: int,
        frame_size: int | tuple[int, int],
        generator: torch.Generator | None = None,
    ) -> MotionParams:
        """Random parameters of ``batch_size`` clips of ``num_frames`` frames of ``frame_size`` (H, W)."""
        ...

    def apply(self, video: Tensor, params: MotionParams, generator: torch.Generator | None = None) -> Tensor:
        """Paste the objects of ``params`` into float ``video [B, 3, T, H, W]`` in [0, 1] -> same shape."""
        ...
