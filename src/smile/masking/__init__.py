"""Token masking: pure, batched, device-agnostic torch (bool masks, True = masked, t-major order)."""

from smile.masking.ops import check_mask, gather_tokens, masked_count, num_tokens, random_scores, topk_mask
from smile.masking.trajectory import (
    TRAJECTORY_MODES,
    TrajectoryMasking,
    object_tokens,
    token_labels,
    trajectory_mask,
)
from smile.masking.tube import (
    SECOND_VIEWS,
    MaskGenerator,
    RandomMasking,
    TubeMasking,
    random_mask,
    tube_mask,
)

__all__ = [
    "SECOND_VIEWS",
    "TRAJECTORY_MODES",
    "MaskGenerator",
    "RandomMasking",
    "TrajectoryMasking",
    "TubeMasking",
    "check_mask",
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
