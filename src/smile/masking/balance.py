"""Exact-count balancing of trajectory-aware masks as one top-k over priority tiers (DESIGN §4).

The reference masks or unmasks random tokens with set operations until the count is exact; here
the same distribution comes from a single :func:`~smile.masking.ops.topk_mask` over per-token
tiers (:func:`priority_tiers`, with the proof), plus :func:`random_subset` for the per-row kept
fraction of object tokens, whose size differs per row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from smile.masking.ops import random_scores

__all__ = ["priority_tiers", "random_subset"]

# Balancing tiers: the final mask is the top-`total` tokens by tier, uniformly at random inside
# the tier where the count runs out. See `priority_tiers` for why one order serves both the over- and
# the under-count case of the reference.
TIER_P2_MASKED = 4  # protected object tokens that the mode left masked (only in `tube` mode)
TIER_M1 = 3  # object tokens to mask
TIER_TMN = 2  # tube-masked background
TIER_TUN = 1  # tube-visible background
TIER_P2_VISIBLE = 0  # protected / kept object tokens that are visible


def random_subset(pool: Tensor, k: Tensor, k_max: int, generator: torch.Generator | None) -> Tensor:
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


def priority_tiers(m1: Tensor, p2: Tensor, mask0: Tensor, tube: Tensor) -> Tensor:
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
