"""Video datasets; each returns dicts with a uint8 ``video`` ``[3, T, H, W]`` and an int64 ``label``."""

from smile.data.datasets.synthetic import SyntheticMotionDataset

__all__ = ["SyntheticMotionDataset"]
