"""Token masking: pure, batched, device-agnostic torch (bool masks, True = masked, t-major order).

Modules: ``base`` (:class:`MaskGenerator`, what the data module calls), ``tube`` (tube and random
masking), ``trajectory`` (SMILE's trajectory-aware masking) with ``coverage`` (object tokens) and
``balance`` (exact counts by priority tiers), ``ops`` (top-k, gather and count helpers).
"""

from smile.masking.base import SECOND_VIEWS, MaskGenerator
from smile.masking.coverage import object_tokens, token_labels
from smile.masking.ops import check_mask_counts, gather_tokens, masked_count, num_tokens, random_scores, topk_mask
from smile.masking.trajectory import TRAJECTORY_MODES, TrajectoryMasking, trajectory_mask
from smile.masking.tube import RandomMasking, TubeMasking, random_mask, tube_mask

__all__ = [
    "SECOND_VIEWS",
    "TRAJECTORY_MODES",
    "MaskGenerator",
    "RandomMasking",
    "TrajectoryMasking",
    "TubeMasking",
    "check_mask_counts",
    "gather_tokens",
    "masked_count",
    "num_tokens",
    "object_tokens",
    "random_mask",
    "random_scores",
    "token_labels",
    "topk_mask",
    "trajectory_mask",
    "tube_mask",
]
