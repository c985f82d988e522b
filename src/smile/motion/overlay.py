"""SMILE's overlay as a :class:`~smile.motion.base.Motion`: draw trajectories and sprites, then paste them.

:meth:`SyntheticMotion.sample` draws the cheap numbers on the CPU (trajectories from
:mod:`smile.motion.trajectories`, sprite ids, which clips get objects); :meth:`SyntheticMotion.apply`
replaces the background if asked (:mod:`smile.motion.backgrounds`) and pastes the sprites with
:func:`~smile.motion.composite.composite` on the batch's device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from smile.motion.backgrounds import BACKGROUNDS, apply_background
from smile.motion.base import NO_OBJECT, MotionParams
from smile.motion.composite import composite
from smile.motion.sprites import ObjectBank
from smile.motion.trajectories import TrajectoryConfig, sample_trajectories

__all__ = ["SyntheticMotion", "cpu_generator"]


def cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """``generator`` if it is a CPU generator; for an accelerator generator, a CPU generator seeded
    from one 63-bit draw of it (a tiny draw plus one sync); None stays None (global RNG)."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)


class SyntheticMotion:
    """SMILE's synthetic object motion (SPEC §2.4): the :class:`~smile.motion.base.Motion` of the data module.

    Args:
        bank: RGBA objects. Keep a large memory-mapped bank on the CPU (only the B*K sprites a
            batch uses are copied to the device) or move a small one with ``bank.to("cuda")``.
        trajectory: :class:`TrajectoryConfig`, a mapping of its fields, or None (reference values).
        background: one of :data:`~smile.motion.backgrounds.BACKGROUNDS` ("video" = the clip).
        background_images: still images for ``background="image"``.
        p: probability that a clip gets objects (reference: 1.0). Clips without objects keep
            their (background-processed) pixels and get boxes filled with ``NO_OBJECT``
            (-1e4), entirely outside the frame, so trajectory-aware masking finds no object
            tokens there: mask generators must treat boxes outside the frame as empty rather
            than clamping them onto the border (:func:`boxes_in_frame` tells them apart).
        antialias: see :func:`composite`.
        inplace: overlay directly into the tensor passed to ``__call__`` when the background
            keeps it (``"video"``), saving one full copy of the batch. Only for callers that pass
            a temporary (the data module passes ``video.float() / 255``).

    Randomness: trajectories, sprite ids and ``p`` draws use a CPU generator (``generator``
    itself, or one seeded from it if it lives on an accelerator; see :func:`cpu_generator`);
    background draws continue from it. The same generator seed gives the same output.
    """

    def __init__(
        self,
        bank: ObjectBank,
        trajectory: TrajectoryConfig | dict | None = None,
        background: str = "video",
        background_images: ObjectBank | Tensor | None = None,
        p: float = 1.0,
        antialias: bool = True,
        inplace: bool = False,
    ) -> None:
        if background not in BACKGROUNDS:
            raise ValueError(f"unknown background {background!r}; choose one of {', '.join(BACKGROUNDS)}")
        if background == "image" and background_images is None:
            raise ValueError("background='image' needs background_images (e.g. smile.data.objects.load_images)")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.bank = bank
        self.trajectory = TrajectoryConfig.from_any(trajectory)
        self.background = background
        self.background_images = background_images
        self.p = float(p)
        self.antialias = antialias
        self.inplace = inplace

    def __repr__(self) -> str:
        return (
            f"SyntheticMotion(objects={len(self.bank)}, num_objects={self.trajectory.num_objects}, "
            f"background={self.background!r}, p={self.p})"
        )

    def sample(
        self,
        batch_size: int,
        num_frames: int,
        frame_size: int | tuple[int, int],
        generator: torch.Generator | None = None,
    ) -> MotionParams:
        """Motion parameters for a batch, on the CPU (usable in a DataLoader worker)."""
        gen = cpu_generator(generator)
        boxes, angles = sample_trajectories(batch_size, num_frames, frame_size, cfg=self.trajectory, generator=gen)
        ids = torch.randint(len(self.bank), boxes.shape[:2], generator=gen)  # [B, K]
        present = torch.rand(batch_size, generator=gen) < self.p  # drawn even for p = 1: same stream for any p
        boxes = torch.where(present.view(-1, 1, 1, 1), boxes, torch.full_like(boxes, NO_OBJECT))
        angles = torch.where(present.view(-1, 1, 1), angles, torch.zeros_like(angles))
        return MotionParams(boxes, angles, ids, present)

    def apply(self, video: Tensor, params: MotionParams, generator: torch.Generator | None = None) -> Tensor:
        """Background + overlay of ``params`` on ``video`` (float ``[B, 3, T, H, W]`` in [0, 1])."""
        out = apply_background(video, self.background, generator, self.background_images)
        if out is video and not self.inplace:
            out = video.clone()
        sprites = self.bank.take(params.sprite_ids, device=out.device)  # [B, K, 4, S, S]
        sprites[:, :, 3:] *= params.present.to(out.device).view(-1, 1, 1, 1, 1)  # absent clips: transparent
        # boxes stay where they were sampled (CPU): composite reads mip levels there without a device sync
        return composite(out, sprites, params.boxes, params.angles, antialias=self.antialias, inplace=True)

    def __call__(self, video: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Overlay objects on ``video`` (float ``[B, 3, T, H, W]`` in [0, 1], not normalised).

        Returns:
            ``(video, boxes)``: the new clip batch and float32 ``[B, K, T, 4]`` boxes on
            ``video.device`` (pre-rotation, unclipped; ``NO_OBJECT`` for clips without objects).
        """
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"SyntheticMotion expects video [B, 3, T, H, W], got {list(video.shape)}")
        b, _, t, h, w = video.shape
        gen = cpu_generator(generator)
        params = self.sample(b, t, (h, w), generator=gen)
        return self.apply(video, params, generator=gen), params.boxes.to(video.device)
