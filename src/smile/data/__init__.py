"""Datasets, sampling and the LightningDataModule."""

from smile.data.datamodule import VideoDataModule, normalize_video
from smile.data.datasets import SyntheticMotionDataset
from smile.data.sampler import ResumableSampler

__all__ = ["ResumableSampler", "SyntheticMotionDataset", "VideoDataModule", "normalize_video"]
