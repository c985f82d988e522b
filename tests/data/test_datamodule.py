import torch

from smile.data import SyntheticVideoDataset, VideoDataModule, normalize_video
from smile.masking import TubeMasking
from smile.motion import Motion, MotionParams
from smile.video import IMAGENET_MEAN, IMAGENET_STD


class GreyMotion:
    """A stand-in overlay: one fixed box per clip, every pixel set to 0.5 by ``apply``."""

    def __init__(self) -> None:
        self.applied_rows = 0

    def sample(self, batch_size, num_frames, frame_size, generator=None) -> MotionParams:
        boxes = torch.arange(batch_size, dtype=torch.float32).view(-1, 1, 1, 1).expand(batch_size, 1, num_frames, 4)
        zeros = torch.zeros(batch_size, 1)
        return MotionParams(boxes.clone(), zeros.expand(-1, num_frames).unsqueeze(1), zeros.long(), zeros[:, 0] == 0)

    def apply(self, video, params, generator=None):
        self.applied_rows += video.shape[0]
        return torch.full_like(video, 0.5)


def test_normalize_video_matches_the_formula():
    video = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 3, 1, 1).expand(1, 3, 3, 1, 1)
    out = normalize_video(video, IMAGENET_MEAN, IMAGENET_STD)
    for c in range(3):
        expected = (torch.tensor([0, 128, 255]) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        torch.testing.assert_close(out[0, c, :, 0, 0], expected.float())
    assert out.dtype == torch.float32


def test_batch_transfer_normalises_and_masks_with_exact_counts():
    ds = SyntheticVideoDataset(8, num_frames=8, img_size=64)
    dm = VideoDataModule(ds, batch_size=4, masking=TubeMasking(0.75, masks_per_clip=2), patch_size=16, tubelet_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (4, 3, 8, 64, 64)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert out["video"].dtype == torch.float32
    assert out["mask"].shape == (4, 2, 64) and out["mask"].dtype == torch.bool
    assert (out["mask"].sum(-1) == 4 * int(0.75 * 16)).all()  # 48 of 64 tokens in every view
    assert dm.num_mask_views == 2


def test_batch_transfer_runs_the_motion_protocol_before_normalising():
    motion = GreyMotion()
    assert isinstance(motion, Motion)
    ds = SyntheticVideoDataset(4, num_frames=4, img_size=32)
    dm = VideoDataModule(ds, batch_size=2, masking=TubeMasking(0.5), motion=motion, keep_original=1)
    batch = next(iter(dm.train_dataloader()))
    out = dm.on_after_batch_transfer(dict(batch), 0)
    expected = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)  # the grey overlay, normalised
    torch.testing.assert_close(out["video"], expected.view(1, 3, 1, 1, 1).expand(2, 3, 4, 32, 32))
    assert torch.equal(out["boxes"][:, 0, 0, 0], torch.tensor([0.0, 1.0])) and motion.applied_rows == 2
    assert torch.equal(out["video_original"], batch["video"][:1])
    assert out["mask"].shape == (2, 1, 8) and (out["mask"].sum(-1) == 2 * int(0.5 * 4)).all()


def test_state_dict_round_trip_resumes_the_sampler():
    ds = SyntheticVideoDataset(12, num_frames=4, img_size=32)
    dm = VideoDataModule(ds, batch_size=2)
    order = [int(i) for b in dm.train_dataloader() for i in b["index"]]
    dm2 = VideoDataModule(ds, batch_size=2)
    dm2.load_state_dict({"epoch": 0, "consumed": 6})
    resumed = [int(i) for b in dm2.train_dataloader() for i in b["index"]]
    assert resumed == order[6:]
