"""Trajectory-aware masking (SMILE, SPEC §3.3): hide the synthetic objects' tubes, keep counts exact.

The reference (``TubeletMaskingGenerator``) builds one numpy mask per clip: a tube mask, the
tokens covered by each object's boxes, a per-mode rule for those object tokens, then a
set-based "balancing" that masks or unmasks random tokens until exactly
``total = t * int(ratio * h * w)`` are masked. Here the whole batch is done at once in torch on
the boxes' device: the object tokens come from broadcast comparisons, the kept fraction from
one random ranking, and the balancing is a single :func:`~smile.masking.ops.topk_mask` over
per-token priority tiers (DESIGN §4). No loop over samples.

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

from smile.masking.ops import masked_count, random_scores, topk_mask, validate_grid, validate_ratio
from smile.masking.tube import Device, MaskGenerator, tube_mask

__all__ = ["TRAJECTORY_MODES", "TrajectoryMasking", "object_tokens", "token_labels", "trajectory_mask"]

TRAJECTORY_MODES = ("tube", "tube+picked_frame_visible", "tube+traj_mask")

# Balancing tiers: the final mask is the top-`total` tokens by tier, uniformly at random inside
# the tier where the count runs out. See `_tiers` for why one order serves both the over- and
# the under-count case of the reference.
TIER_P2_MASKED = 4  # protected object tokens that the mode left masked (only in `tube` mode)
TIER_M1 = 3  # object tokens to mask
TIER_TMN = 2  # tube-masked background
TIER_TUN = 1  # tube-visible background
TIER_P2_VISIBLE = 0  # protected / kept object tokens that are visible


def _floor_div(x: Tensor, p: int) -> Tensor:
    """``floor(x / p)`` for int or float coordinates, as an int64 tensor."""
    if x.is_floating_point():
        return torch.floor(x / p).long()
    return torch.div(x, p, rounding_mode="floor").long()


def _ceil_div(x: Tensor, p: int) -> Tensor:
    """``ceil(x / p)`` for int or float coordinates, as an int64 tensor."""
    if x.is_floating_point():
        return torch.ceil(x / p).long()
    return -torch.div(-x, p, rounding_mode="floor").long()


def _validate_boxes(boxes: Tensor, t: int) -> int:
    """Check ``boxes`` is ``[B, K, T, 4]`` with ``T`` a multiple of ``t``; return the tubelet size."""
    if not isinstance(boxes, Tensor) or boxes.dim() != 4 or boxes.shape[-1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be a tensor [B, K, T, 4] of (x1, y1, x2, y2), got {shape}")
    frames = boxes.shape[2]
    if frames < t or frames % t:
        raise ValueError(f"boxes have T={frames} frames, not a multiple of the grid's t={t} slots")
    return frames // t


def object_tokens(boxes: Tensor, grid: Sequence[int], patch_size: int = 16, dilation: int = 1) -> Tensor:
    """Tokens covered by any object: bool ``[B, t*h*w]``, t-major.

    For object ``k`` and temporal slot ``i``, the box is the union of the ROIs of the slot's
    ``tub = T // t`` frames (frames ``i*tub .. i*tub+tub-1``). Its tokens are columns
    ``[max(floor(x1/p), 0), min(ceil(x2/p) + dilation, w))`` and rows likewise with y and ``h``.
    ``dilation=1`` is the reference's extra column/row, on the right and bottom only (SPEC §10
    item 11); ``0`` gives the plain covering cells. A box wholly outside the frame covers
    nothing (the reference would turn a negative right edge into a numpy slice from the end;
    its own sampler never produces one, since box centres stay inside the frame).

    Args:
        boxes: ``[B, K, T, 4]`` pixel ``(x1, y1, x2, y2)``, pre-rotation, unclipped; int or float.
        grid: token grid ``(t, h, w)``.
        patch_size: spatial patch size in pixels.
        dilation: extra cells added on the right and bottom, >= 0.
    """
    t, h, w = validate_grid(grid)
    tub = _validate_boxes(boxes, t)
    b, k = boxes.shape[:2]
    slots = boxes.reshape(b, k, t, tub, 4)  # [B, K, t, tub, 4]
    x1, y1 = slots[..., 0].amin(-1), slots[..., 1].amin(-1)  # [B, K, t]
    x2, y2 = slots[..., 2].amax(-1), slots[..., 3].amax(-1)  # [B, K, t]
    col = torch.arange(w, device=boxes.device)
    row = torch.arange(h, device=boxes.device)
    in_col = (col >= _floor_div(x1, patch_size)[..., None]) & (col < _ceil_div(x2, patch_size)[..., None] + dilation)
    in_row = (row >= _floor_div(y1, patch_size)[..., None]) & (row < _ceil_div(y2, patch_size)[..., None] + dilation)
    cover = in_row[..., :, None] & in_col[..., None, :]  # [B, K, t, h, w]
    return cover.any(dim=1).reshape(b, t * h * w)  # [B, N]


def token_labels(objects: Tensor, picked: Tensor, grid: Sequence[int]) -> Tensor:
    """Per-token labels: 0 background, 1 object to mask, 2 object in a picked slot (protected).

    Args:
        objects: bool ``[B, t*h*w]`` from :func:`object_tokens`.
        picked: bool ``[B, t]``, True for each sample's picked (protected) slots.
        grid: token grid ``(t, h, w)``.

    Returns:
        int64 ``[B, t*h*w]``.
    """
    t, h, w = validate_grid(grid)
    slot_picked = picked[:, :, None].expand(-1, t, h * w).reshape(picked.shape[0], t * h * w)  # [B, N]
    return objects.long() * (1 + slot_picked.long())


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


def _random_subset(pool: Tensor, k: Tensor, k_max: int, generator: torch.Generator | None) -> Tensor:
    """Uniform random subset of ``k[b]`` tokens of ``pool[b]`` per row: bool ``[B, N]``.

    Sizes differ per row, so :func:`topk_mask` does not apply. Instead rank random scores with
    the pool tokens first (others get -1) and keep each row's first ``k[b]`` of a sorted top-
    ``k_max``; ``k_max`` is a static bound on ``k`` (no device sync). Needs ``k[b] <= |pool[b]|``.
    ``topk`` returns distinct indices even where two float scores tie, so counts are exact.
    """
    scores = random_scores(pool.shape, generator, pool.device).masked_fill(~pool, -1.0)  # [B, N]
    idx = scores.topk(k_max, dim=-1, sorted=True).indices  # [B, k_max], pool tokens first
    take = torch.arange(k_max, device=pool.device) < k[:, None]  # [B, k_max]
    return torch.zeros_like(pool).scatter_(-1, idx, take)


def _tiers(m1: Tensor, p2: Tensor, mask0: Tensor, tube: Tensor) -> Tensor:
    """Balancing priorities: float ``[B, N]``; the top-``total`` by tier is the reference's mask.

    Sets (per sample, disjoint): M1 object tokens to mask, P2 protected/kept object tokens,
    TMN = tube-masked background, TUN = tube-visible background. ``mask0`` is the mode's mask
    before balancing; in every mode it is M1 ∪ TMN ∪ (P2 ∩ mask0), where P2 ∩ mask0 is non-empty
    only in ``tube`` mode (protected tokens that the tube covers). The reference then:

    - over (|mask0| > total, d = |mask0| - total): unmasks min(d, |TMN|) uniform tokens of TMN,
      then the d - |TMN| left (if any) uniform tokens of M1. P2 ∩ mask0 is never unmasked.
    - under (|mask0| < total): masks min(d, |TUN|) uniform tokens of TUN, then the rest uniform
      tokens of P2 (the reference draws from all of P2; see below).

    Claim: both equal ``topk_mask(prio, total)`` with the single order
    P2∩mask0 (4) > M1 (3) > TMN (2) > TUN (1) > P2 \\ mask0 (0).

    Proof. With integer tiers and iid tie-break noise, a top-k keeps every tier above the
    "boundary" tier (where the count runs out) whole, and a uniformly random subset of the
    boundary tier of the remaining size. Write P2m = P2 ∩ mask0 and P2v = P2 \\ mask0.

    - Over: tiers 4..2 are exactly mask0, with |mask0| > total, so nothing below TMN is taken.
      P2m ⊆ tube, so |P2m| <= |tube| = total and P2m is kept whole. If |P2m| + |M1| <= total,
      the boundary is TMN: keep a uniform (total - |P2m| - |M1|)-subset of TMN, i.e. drop a
      uniform d-subset (d <= |TMN|): the reference's first branch. Otherwise M1 is the boundary:
      drop all of TMN and keep a uniform (total - |P2m|)-subset of M1, i.e. drop a uniform
      (d - |TMN|)-subset of M1: its second branch.
    - Under: tiers 4..2 (= mask0) fit and are kept whole; the remaining d = total - |mask0| come
      from TUN (a uniform subset if d <= |TUN|), else all of TUN plus a uniform (d - |TUN|)-subset
      of P2v: the reference's two branches.
    - Equal: tiers 4..2 are exactly the ``total`` tokens of mask0, which the reference keeps.

    The draws before the balancing (tube, picked slot, kept subset) are the same in both, so the
    final mask has the reference's distribution (up to float32 ties in the noise, which only
    make the within-tier order arbitrary, never the count). ∎

    Only where the cases *act* do they differ (over touches TMN then M1, under TUN then P2); one
    order serves both because over never reaches below TMN and under never cuts above TUN.

    Reference bug (SPEC §10 item 12): in the under case it draws from all of P2, so in ``tube``
    mode a draw could hit a P2 token that is already masked, leave the count short and fail its
    assertion. That case is in fact unreachable (in ``tube`` mode mask0 ⊇ tube, so
    |mask0| >= total and the under case never occurs), and the tiers here cannot double count
    anyway: a top-k picks ``total`` distinct tokens, and the under case only adds P2 \\ mask0.
    """
    background = torch.where(tube, float(TIER_TMN), float(TIER_TUN))  # [B, N]
    prio = torch.where(m1, float(TIER_M1), torch.where(p2, float(TIER_P2_VISIBLE), background))
    return prio.masked_fill(p2 & mask0, float(TIER_P2_MASKED))  # [B, N]


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
        p2 = _random_subset(objects, n_keep, int(traj_unmask_ratio * t * h * w), generator)  # kept object tokens
        m1 = objects & ~p2
        mask0 = m1 | (tube & ~objects)
    return topk_mask(_tiers(m1, p2, mask0, tube), total, generator)


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
