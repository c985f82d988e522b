"""Datasets, decoding, sampling, transforms and the LightningDataModule."""

from smile.data.datamodule import VideoDataModule, normalize_video
from smile.data.datasets import SyntheticMotionDataset, VideoListDataset
from smile.data.decoding import VideoDecodeError, VideoInfo, read_clip, read_frames, video_info
from smile.data.sampler import ResumableSampler
from smile.data.sampling import pretrain_indices
from smile.data.transforms import MultiScaleCrop

__all__ = [
    "MultiScaleCrop",
    "ResumableSampler",
    "SyntheticMotionDataset",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoInfo",
    "VideoListDataset",
    "normalize_video",
    "pretrain_indices",
    "read_clip",
    "read_frames",
    "video_info",
]
