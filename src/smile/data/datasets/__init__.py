"""Video datasets; each returns dicts with a uint8 ``video`` ``[3, T, H, W]`` and an int64 ``label``."""

from smile.data.datasets.list import VideoListDataset, read_video_list
from smile.data.datasets.synthetic import SyntheticVideoDataset

__all__ = ["SyntheticVideoDataset", "VideoListDataset", "read_video_list"]
