import torch

from smile.data import SyntheticMotionDataset, VideoDataModule, normalize_video
from smile.masking import TubeMasking
from smile.teachers import IMAGENET_MEAN, IMAGENET_STD


def test_normalize_video_matches_the_formula():
    video = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 3, 1, 1).expand(1, 3, 3, 1, 1)
    out = normalize_video(video, IMAGENET_MEAN, IMAGENET_STD)
    for c in range(3):
        expected = (torch.tensor([0, 128, 255]) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        torch.testing.assert_close(out[0, c, :, 0, 0], expected.float())
    assert out.dtype == torch.float32


def test_batch_transfer_normalises_and_masks_with_exact_counts():
    ds = SyntheticMotionDataset(8, num_frames=8, img_size=64)
    dm = VideoDataModule(ds, batch_size=4, masking=TubeMasking(0.75, masks_per_clip=2), patch_size=16, tubelet_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (4, 3, 8, 64, 64)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert out["video"].dtype == torch.float32
    assert out["mask"].shape == (4, 2, 64) and out["mask"].dtype == torch.bool
    assert (out["mask"].sum(-1) == 4 * int(0.75 * 16)).all()  # 48 of 64 tokens in every view
    assert dm.num_mask_views == 2


def test_state_dict_round_trip_resumes_the_sampler():
    ds = SyntheticMotionDataset(12, num_frames=4, img_size=32)
    dm = VideoDataModule(ds, batch_size=2)
    order = [int(i) for b in dm.train_dataloader() for i in b["index"]]
    dm2 = VideoDataModule(ds, batch_size=2)
    dm2.load_state_dict({"epoch": 0, "consumed": 6})
    resumed = [int(i) for b in dm2.train_dataloader() for i in b["index"]]
    assert resumed == order[6:]
