"""Trajectory-aware masking (SMILE, SPEC §3.3): hide the synthetic objects' tubes, keep counts exact.

The reference (``TubeletMaskingGenerator``) builds one numpy mask per clip: a tube mask, the
tokens covered by each object's boxes, a per-mode rule for those object tokens, then a
set-based "balancing" that masks or unmasks random tokens until exactly
``total = t * int(ratio * h * w)`` are masked. Here the whole batch is done at once in torch on
the boxes' device: the object tokens come from broadcast comparisons (:mod:`smile.masking.coverage`),
the kept fraction from one random ranking, and the balancing is a single top-k over per-token
priority tiers (:mod:`smile.masking.balance`, DESIGN §4). No loop over samples.

Token labels (per sample, t-major): 0 background, 1 object token to mask, 2 object token in a
"picked" temporal slot (protected). Modes:

- ``tube``: mask = (label == 1) | tube; picked-slot object tokens follow the tube.
- ``tube+picked_frame_visible``: as ``tube``, then every picked-slot object token is visible.
- ``tube+traj_mask`` (SMILE): every object token (label 1 or 2, so the picked slot no longer
  matters) is masked except a random ``int(traj_unmask_ratio * |traj|)`` of them.

``traj_unmask_ratio`` defaults to **0.1**, what the reference actually runs: its stage-1 script
passes ``--traj_unmask_ratio 0.2`` but the dataset never forwards the flag, so the generator's
default 0.1 is always used (SPEC §3.3, §10 item 1). Set 0.2 to get what the script asked for.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import Tensor

from smile.masking.balance import priority_tiers, random_subset
from smile.masking.base import MaskGenerator
from smile.masking.coverage import object_tokens, token_labels
from smile.masking.ops import Device, masked_count, topk_mask, validate_grid, validate_ratio
from smile.masking.tube import tube_mask

__all__ = ["TRAJECTORY_MODES", "TrajectoryMasking", "object_tokens", "token_labels", "trajectory_mask"]

TRAJECTORY_MODES = ("tube", "tube+picked_frame_visible", "tube+traj_mask")


def _picked_slots(
    batch_size: int, t: int, picked_slots: Sequence[int] | None, generator: torch.Generator | None, device: Device
) -> Tensor:
    """bool ``[B, t]``: one uniform slot per sample, or the fixed ``picked_slots`` for all."""
    if picked_slots is not None:
        slots = _validate_slots(picked_slots)
        if any(s >= t for s in slots):
            raise ValueError(f"picked_slots {list(slots)} must lie in [0, t={t})")
        picked = torch.zeros(batch_size, t, dtype=torch.bool, device=device)
        picked[:, list(slots)] = True
        return picked
    gen_device = None if generator is None else generator.device
    slot = torch.randint(0, t, (batch_size,), generator=generator, device=gen_device or device).to(device)  # [B]
    return torch.nn.functional.one_hot(slot, t).bool()  # [B, t]


def _validate_slots(picked_slots: Sequence[int]) -> tuple[int, ...]:
    """``picked_slots`` as a tuple of non-negative ints, or ValueError."""
    try:
        slots = tuple(operator.index(s) for s in picked_slots)
    except TypeError as err:
        raise ValueError(f"picked_slots must be a list of slot indices, got {picked_slots!r}") from err
    if any(s < 0 for s in slots):
        raise ValueError(f"picked_slots must be non-negative slot indices, got {picked_slots!r}")
    return slots


def trajectory_mask(
    boxes: Tensor,
    grid: Sequence[int],
    patch_size: int,
    ratio: float,
    traj_unmask_ratio: float = 0.1,
    mode: str = "tube+traj_mask",
    generator: torch.Generator | None = None,
    picked_slots: Sequence[int] | None = None,
    dilation: int = 1,
) -> Tensor:
    """Trajectory-aware masks for a batch, exactly ``t * int(ratio * h * w)`` masked per sample.

    Args:
        boxes: ``[B, K, T, 4]`` object boxes ``(x1, y1, x2, y2)`` in pixels, pre-rotation and
            unclipped, for the ``T`` frames of the clip (``T`` a multiple of ``t``; the reference
            has ``T = 16``, ``t = 8``). ``K`` may be 0 (then this is a tube mask).
        grid: token grid ``(t, h, w)``.
        patch_size: spatial patch size in pixels.
        ratio: masking ratio in (0, 1), as for the tube mask.
        traj_unmask_ratio: fraction of object tokens kept visible in ``tube+traj_mask``, [0, 1).
            Default 0.1, what the reference runs (see the module docstring).
        mode: one of :data:`TRAJECTORY_MODES`.
        generator: optional generator; draws happen on its device, then move to the boxes'.
        picked_slots: fixed protected slots for every sample (the reference's
            ``--visible_frames``); None draws one uniform slot in ``[0, t)`` per sample.
        dilation: extra token columns/rows on the right and bottom of each box (reference: 1).

    Returns:
        Bool ``[B, t*h*w]`` on ``boxes.device``, True = masked, t-major.
    """
    _validate_options(ratio, traj_unmask_ratio, mode, dilation)
    t, h, w = validate_grid(grid)
    objects = object_tokens(boxes, (t, h, w), patch_size, dilation)  # [B, N]
    batch, device = boxes.shape[0], boxes.device
    total = t * masked_count(ratio, h * w)
    tube = tube_mask(batch, (t, h, w), ratio, generator, device)  # [B, N]
    picked = _picked_slots(batch, t, picked_slots, generator, device)  # [B, t]
    labels = token_labels(objects, picked, (t, h, w))  # [B, N]
    m1, p2 = labels == 1, labels == 2
    if mode == "tube":
        mask0 = m1 | tube
    elif mode == "tube+picked_frame_visible":
        mask0 = (m1 | tube) & ~p2
    else:  # tube+traj_mask: every object token masked but a random kept fraction
        # int(r * |traj|) as the reference (float64 product, truncated); <= int(r * N) = static bound
        n_keep = torch.floor(traj_unmask_ratio * objects.sum(-1, dtype=torch.float64)).long()  # [B]
        p2 = random_subset(objects, n_keep, int(traj_unmask_ratio * t * h * w), generator)  # kept object tokens
        m1 = objects & ~p2
        mask0 = m1 | (tube & ~objects)
    return topk_mask(priority_tiers(m1, p2, mask0, tube), total, generator)


def _validate_options(ratio: float, traj_unmask_ratio: float, mode: str, dilation: int) -> None:
    """Raise ValueError naming the offending option."""
    validate_ratio(ratio)
    if mode not in TRAJECTORY_MODES:
        raise ValueError(f"mode must be one of {TRAJECTORY_MODES}, got {mode!r}")
    ok = isinstance(traj_unmask_ratio, (int, float)) and not isinstance(traj_unmask_ratio, bool)
    if not ok or not 0.0 <= traj_unmask_ratio < 1.0:
        raise ValueError(f"traj_unmask_ratio must be in [0, 1), got {traj_unmask_ratio!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"dilation must be an int >= 0, got {dilation!r}")


class TrajectoryMasking(MaskGenerator):
    """Trajectory-aware masking (SPEC §3.3) as a :class:`MaskGenerator`; SMILE stage 1.

    Defaults are the reference's stage-1 run: ratio 0.8, ``tube+traj_mask`` with the 0.1 kept
    fraction that actually ran, and 2 masks per clip with the second view permuted across the
    batch (SPEC §3.5: that view carries another clip's object mask; ``independent`` instead
    draws a fresh trajectory mask from each clip's own boxes).

    Without boxes (``boxes=None``: no objects in this batch, e.g. stage 2 or motion off) every
    view falls back to a plain tube mask with the same exact count; the reference raises a
    TypeError there instead (SPEC §10 item 10).
    """

    def __init__(
        self,
        ratio: float = 0.8,
        traj_unmask_ratio: float = 0.1,
        mode: str = "tube+traj_mask",
        masks_per_clip: int = 2,
        second_view: str = "batch_permute",
        picked_slots: Sequence[int] | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__(ratio, masks_per_clip, second_view)
        _validate_options(ratio, traj_unmask_ratio, mode, dilation)
        self.traj_unmask_ratio = float(traj_unmask_ratio)
        self.mode = mode
        self.picked_slots = None if picked_slots is None else _validate_slots(picked_slots)
        self.dilation = dilation

    def sample(
        self,
        batch_size: int,
        grid: Sequence[int],
        generator: torch.Generator | None,
        device: Device,
        boxes: Tensor | None = None,
        patch_size: int = 16,
    ) -> Tensor:
        if boxes is None:
            return tube_mask(batch_size, grid, self.ratio, generator, device)
        if device is not None:
            boxes = boxes.to(device)
        return trajectory_mask(
            boxes,
            grid,
            patch_size,
            self.ratio,
            self.traj_unmask_ratio,
            self.mode,
            generator,
            self.picked_slots,
            self.dilation,
        )

    def num_masked(self, grid: Sequence[int]) -> int:
        t, h, w = validate_grid(grid)
        return t * masked_count(self.ratio, h * w)

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, traj_unmask_ratio={self.traj_unmask_ratio}, mode={self.mode!r}, "
            f"picked_slots={self.picked_slots}, dilation={self.dilation})"
        )
