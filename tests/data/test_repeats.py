"""Repeated sampling (``data.train_dataset.repeats=R``): one decoded window, R clips with their own crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import smile.data.datasets.list as list_module
from smile.data import VideoDataModule
from smile.data.datasets.list import VideoListDataset
from smile.data.decoding import read_frames

av = pytest.importorskip("av")


def _noise_video(path: Path, seed: int, frames: int = 24, size: tuple[int, int] = (48, 64)) -> Path:
    """A tiny clip of smooth random texture, different for each seed (flat clips would hide crop and order)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = size[1], size[0], "yuv420p", 4_000_000
        for k in range(frames):
            frame = np.roll(base, k, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def noise_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight distinct noise clips and their list (labels 0..7)."""
    root = tmp_path_factory.mktemp("noise")
    lines = [f"{_noise_video(root / f'v{k}.mp4', k).name} {k}\n" for k in range(8)]
    (root / "train.txt").write_text("".join(lines))
    return root / "train.txt"


def _dataset(list_file: Path, repeats: int) -> VideoListDataset:
    return VideoListDataset(list_file, num_frames=4, sampling_rate=2, img_size=32, backend="pyav", repeats=repeats)


def test_repeated_clips_share_one_decode_but_not_their_crops(noise_list, monkeypatch):
    ds = _dataset(noise_list, 3)
    calls = []
    real = list_module.read_clip
    monkeypatch.setattr(list_module, "read_clip", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    item = ds[2]
    assert len(calls) == 1  # one decode for the three clips
    assert item["video"].shape == (3, 3, 4, 32, 32) and item["video"].dtype == torch.uint8
    assert item["label"].tolist() == [2, 2, 2] and item["index"].tolist() == [2, 2, 2]
    assert item["padded"].tolist() == [0, 0, 0] and item["skipped"].tolist() == [0, 0, 0]
    frames = torch.from_numpy(read_frames(ds.paths[2], ds.clip_indices(2, 24), "pyav"))  # the shared window
    rng = np.random.default_rng([ds.seed, 2, 0, 1])
    boxes = []
    for clip in item["video"]:  # each clip is its own crop of the same frames
        state = rng.bit_generator.state
        boxes.append(ds.crop.sample_crop(48, 64, rng))
        rng.bit_generator.state = state
        assert torch.equal(clip, ds.crop(frames, rng))
    assert len(set(boxes)) == 3
    assert not torch.equal(item["video"][0], item["video"][1])


def test_one_repeat_is_the_plain_item(noise_list):
    plain, first = _dataset(noise_list, 1)[5], _dataset(noise_list, 2)[5]
    assert plain["video"].shape == (3, 4, 32, 32)
    assert torch.equal(plain["video"], first["video"][0])  # R = 1 draws exactly the first of R crops
    ds = _dataset(noise_list, 1)
    frames = torch.from_numpy(read_frames(ds.paths[5], ds.clip_indices(5, 24), "pyav"))
    assert torch.equal(plain["video"], ds.crop(frames, np.random.default_rng([ds.seed, 5, 0, 1])))
    assert {k: v.shape for k, v in plain.items() if isinstance(v, torch.Tensor)} == {
        "video": (3, 4, 32, 32),
        "padded": (),
        "label": (),
        "index": (),
        "skipped": (),
    }


def test_loader_batches_count_clips_and_r1_batches_are_unchanged(noise_list):
    one = VideoDataModule(_dataset(noise_list, 1), batch_size=4, pin_memory=False)
    assert one.train_items_per_batch == 4 and one.train_collate is None
    batch = next(iter(one.train_dataloader()))
    order = list(iter(one._train_sampler))[:4]
    expected = default_collate([one.train_dataset[i] for i in order])  # what the loader gave before repeats
    assert batch.keys() == expected.keys()
    assert all(torch.equal(batch[k], expected[k]) for k in expected if isinstance(expected[k], torch.Tensor))

    two = VideoDataModule(_dataset(noise_list, 2), batch_size=4, pin_memory=False)
    assert two.train_items_per_batch == 2
    batch = next(iter(two.train_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 32, 32)  # 4 clips from 2 videos
    assert batch["label"].tolist()[0::2] == batch["label"].tolist()[1::2]
    assert batch["skipped"].shape == (4,) and len(two.train_dataloader()) == 4  # 8 videos / 2 per step


def test_batch_size_must_be_a_multiple_of_repeats(noise_list):
    with pytest.raises(ValueError, match=r"data.batch_size=6 must be a multiple of data.train_dataset.repeats=4"):
        VideoDataModule(_dataset(noise_list, 4), batch_size=6)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        _dataset(noise_list, 0)


def test_resume_with_repeats_matches_uninterrupted_run(tiny_cfg, noise_list, tmp_path):
    from test_train import StopAt, assert_same_weights, net_state

    from smile.train import run, setup

    args = [
        "data=list",
        f"data.train_dataset.list_file='{noise_list}'",
        "data.train_dataset.repeats=2",
        "data.train_dataset.sampling_rate=2",
        "data.train_dataset.backend=pyav",
        "data.num_workers=0",
        "data.batch_size=4",  # 2 videos x 2 clips: 4 steps per epoch
        "trainer.max_epochs=3",  # Lightning counts the interrupted epoch as finished (see test_train)
        "trainer.max_steps=8",
        "model.scheduler.warmup_steps=3",
        "model.optimizer.lr=1e-2",
        "callbacks.checkpoint.every_n_train_steps=100",
    ]
    full = run(tiny_cfg(*args, out=tmp_path / "full"))
    assert full["global_step"] == 8
    first = setup(tiny_cfg(*args, out=tmp_path / "split"))
    first.trainer.callbacks.append(StopAt(3))  # mid-epoch
    assert first.fit()["global_step"] == 3
    assert setup(tiny_cfg(*args, out=tmp_path / "split")).fit()["global_step"] == 8
    assert_same_weights(net_state(full["last_checkpoint"]), net_state(tmp_path / "split/checkpoints/last.ckpt"))


def test_synthetic_repeats_get_their_own_masks_on_the_device():
    from smile.data import SyntheticVideoDataset
    from smile.masking import TubeMasking

    ds = SyntheticVideoDataset(num_samples=8, num_frames=4, img_size=32, repeats=2)
    item = ds[3]
    assert item["video"].shape == (2, 3, 4, 32, 32) and torch.equal(item["video"][0], item["video"][1])
    assert torch.equal(item["video"][0], SyntheticVideoDataset(num_samples=8, num_frames=4, img_size=32)[3]["video"])
    dm = VideoDataModule(ds, batch_size=8, pin_memory=False, masking=TubeMasking(ratio=0.5), patch_size=8)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["video"].shape == (8, 3, 4, 32, 32) and batch["index"].tolist()[0::2] == batch["index"].tolist()[1::2]
    assert any(not torch.equal(batch["mask"][k], batch["mask"][k + 1]) for k in range(0, 8, 2))
