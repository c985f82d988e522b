"""AvaClipDataset: which keyframes become items, which frames a clip holds, the batch contract, errors."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from smile.data.ava import AvaClipDataset, AvaTrainTransform, collate_ava, read_annotations, read_proposals
from smile.data.ava.color import draw_hsv_shifts, hsv_jitter

FLAT = 8  # side of the index-coded frames


def _ds(synth, **kw) -> AvaClipDataset:
    args = {"frames": synth.frames, "annotations": synth.train_csv, "excluded": synth.excluded_csv}
    return AvaClipDataset(**(args | {"num_frames": 4, "sampling_rate": 2, "img_size": (48, 64)} | kw))


def _coded_frames(root: Path, vid: str = "coded", n: int = 150) -> Path:
    """JPEG folder whose 0-based frame i is flat grey i; an annotation CSV with keyframes 900, 902, 904."""
    (root / "frames" / vid).mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((FLAT, FLAT, 3), i, np.uint8)).save(root / "frames" / vid / f"{vid}_{i + 1:06d}.jpg")
    csv = root / "coded.csv"
    csv.write_text("".join(f"{vid},{s},0.1,0.1,0.5,0.5,12,0\n" for s in (900, 902, 904)))
    return csv


def _grey(video: torch.Tensor) -> list[int]:
    return video.float().mean(dim=(0, 2, 3)).round().int().tolist()  # [3, T, H, W] -> per frame


def test_train_items_are_the_annotated_non_excluded_keyframes(ava_synth):
    ds = _ds(ava_synth, short_side=48)
    keys = [(k.video_id, k.second) for k in ds.items]
    assert keys == [("synth000000", 902), ("synth000000", 903), ("synth000001", 902), ("synth000001", 903),
                    ("synth000001", 904)]  # fmt: skip
    truth = read_annotations(ava_synth.train_csv)[("synth000001", 903)]
    item = ds[3]
    assert (item["video_id"], item["timestamp"]) == ("synth000001", 903)
    assert item["video"].shape == (3, 4, 48, 64) and item["video"].dtype == torch.uint8
    assert torch.equal(item["norm_boxes"], torch.from_numpy(truth.boxes))
    assert torch.equal(item["labels"], torch.from_numpy(truth.labels)) and item["labels"].shape == (4, 80)
    assert torch.equal(item["box_scores"], torch.ones(4))  # ground-truth boxes: score 1
    flipped = item["boxes"][0, 0].item() != pytest.approx(truth.boxes[0, 0] * 64, abs=1e-3)
    x = truth.boxes[:, [2, 0]] * -64 + 64 if flipped else truth.boxes[:, [0, 2]] * 64  # full frame, flipped or not
    torch.testing.assert_close(item["boxes"][:, [0, 2]], torch.from_numpy(x))
    torch.testing.assert_close(item["boxes"][:, [1, 3]], torch.from_numpy(truth.boxes[:, [1, 3]] * 48))


def test_items_are_reproducible_and_change_with_the_epoch(ava_synth):
    ds = _ds(ava_synth, box_jitter=0.1, short_side=48)
    a, b, c = ds[2], _ds(ava_synth, box_jitter=0.1, short_side=48)[2], ds[2]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["boxes"], b["boxes"])
    assert torch.equal(a["boxes"], c["boxes"])
    truth = torch.from_numpy(read_annotations(ava_synth.train_csv)[("synth000001", 902)].boxes)
    assert torch.equal(a["norm_boxes"], truth)  # as in the file: not jittered
    assert not torch.equal(a["boxes"], _ds(ava_synth, short_side=48)[2]["boxes"])  # jittered
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["boxes"], a["boxes"])


def test_test_items_come_from_proposals_above_the_threshold(tmp_path, ava_synth):
    vid = ava_synth.val_videos[0]
    props = {
        f"{vid},0902": np.array([[0.1, 0.2, 0.3, 0.4, 0.9], [0.0, 0.0, 1.0, 1.0, 0.5]], np.float32),
        f"{vid},0903": np.array([[0.1, 0.1, 0.2, 0.2, 0.3]], np.float32),
        f"{vid},0904": np.array(
            [[0.5, 0.5, 1.0, 1.0, 0.8], [0.0, 0.25, 0.5, 0.75, 0.81], [0, 0, 1, 1, 0.2]], np.float32
        ),
        "notannotated,0902": np.array([[0.1, 0.1, 0.2, 0.2, 0.99]], np.float32),
    }
    pkl = tmp_path / "props.pkl"
    pkl.write_bytes(pickle.dumps(props, protocol=2))
    ds = _ds(ava_synth, annotations=ava_synth.val_csv, excluded=None, proposals=pkl, split="test")
    assert [(k.video_id, k.second) for k in ds.items] == [(vid, 902), (vid, 904)]
    item = ds[1]
    torch.testing.assert_close(item["boxes"], torch.tensor([[32.0, 24.0, 64.0, 48.0], [0.0, 12.0, 32.0, 36.0]]))
    torch.testing.assert_close(item["norm_boxes"], torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.0, 0.25, 0.5, 0.75]]))
    assert item["labels"].shape == (2, 80) and not item["labels"].any()
    assert torch.equal(item["box_scores"], torch.tensor([0.8, 0.81]))  # the detector's scores, for the action scores
    excluded = tmp_path / "excluded.csv"
    excluded.write_text(f"{vid},0904\n")
    assert len(_ds(ava_synth, annotations=ava_synth.val_csv, excluded=excluded, proposals=pkl, split="test")) == 1
    # the synthetic val proposals: 3 keyframes, 4 of 5 boxes >= 0.8 each
    synth = _ds(
        ava_synth, annotations=ava_synth.val_csv, excluded=None, proposals=ava_synth.val_proposals, split="test"
    )
    kept = read_proposals(ava_synth.val_proposals)
    assert len(synth) == 3 and [len(synth[i]["boxes"]) for i in range(3)] == [4, 4, 4]
    torch.testing.assert_close(synth[0]["norm_boxes"], torch.from_numpy(kept[(vid, 902)][:, :4]))


def test_oracle_boxes_without_proposals(ava_synth):
    ds = _ds(ava_synth, annotations=ava_synth.val_csv, excluded=None, split="test")
    truth = read_annotations(ava_synth.val_csv)
    assert [(k.video_id, k.second) for k in ds.items] == list(truth)
    item = ds[0]
    assert torch.equal(item["labels"], torch.from_numpy(truth[(item["video_id"], 902)].labels))


def test_clip_frames_centred_on_the_keyframe_and_clamped(tmp_path):
    csv = _coded_frames(tmp_path)
    ds = AvaClipDataset(tmp_path / "frames", csv, split="test", num_frames=4, sampling_rate=8, img_size=FLAT)
    assert ds.clip_indices(902).tolist() == [44, 52, 60, 68]
    assert _grey(ds[0]["video"]) == [0, 0, 0, 8]  # keyframe 900: indices -16, -8, 0, 8 clamped at 0
    assert _grey(ds[1]["video"]) == [44, 52, 60, 68]
    late = AvaClipDataset(tmp_path / "frames", csv, split="test", num_frames=4, sampling_rate=30, img_size=FLAT)
    assert _grey(late[2]["video"]) == [60, 90, 120, 149]  # keyframe 904: 150 clamped to the last frame


def test_collate_follows_the_batch_contract(ava_synth):
    ds = _ds(ava_synth)
    batch = collate_ava([ds[0], ds[2], ds[4]])
    assert batch["video"].shape == (3, 3, 4, 48, 64) and batch["video"].dtype == torch.uint8
    assert [b.shape[1] for b in batch["boxes"]] == [4, 4, 4] and len(batch["labels"]) == 3
    assert batch["video_id"] == ["synth000000", "synth000001", "synth000001"]
    assert batch["timestamp"].tolist() == [902, 902, 904] and batch["timestamp"].dtype == torch.int64


def test_missing_files_are_named(tmp_path, ava_synth):
    with pytest.raises(FileNotFoundError, match="frames root .*nowhere"):
        _ds(ava_synth, frames=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="annotation file .*missing.csv"):
        _ds(ava_synth, annotations=tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="proposals=.* split 'train'"):
        _ds(ava_synth, proposals=ava_synth.train_proposals)
    root = tmp_path / "copy"
    shutil.copytree(ava_synth.root, root)
    shutil.rmtree(root / "frames" / "synth000000")
    shutil.rmtree(root / "frames" / "synth000001")
    with pytest.raises(FileNotFoundError, match="2 of 2 AVA frame folders .*synth000000, synth000001"):
        _ds(ava_synth, frames=root / "frames")
    (root / "frames" / "synth000002" / "synth000002_000061.jpg").unlink()  # keyframe 902 of the val video
    ds = _ds(ava_synth, frames=root / "frames", annotations=ava_synth.val_csv, excluded=None, split="test")
    with pytest.raises(FileNotFoundError, match="synth000002_000061.jpg not found \\(keyframe synth000002,0902\\)"):
        ds[0]


def test_keyframe_past_the_frames_is_an_error(tmp_path):
    csv = _coded_frames(tmp_path, n=100)
    ds = AvaClipDataset(tmp_path / "frames", csv, split="test", num_frames=2, sampling_rate=2, img_size=FLAT)
    assert _grey(ds[1]["video"]) == [58, 60]
    with pytest.raises(ValueError, match="keyframe coded,0904 is frame 120 but .*coded has only 100 frames"):
        ds[2]


def _write_mp4(path: Path, n: int, fps: int) -> None:
    """A 32x24 video at ``fps`` whose frame k is flat grey 5 k (PyAV, mpeg4)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 32, 24, "yuv420p", 2_000_000
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 5 * k, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_video_frames_at_the_videos_own_fps(tmp_path):
    (tmp_path / "videos").mkdir()
    _write_mp4(tmp_path / "videos" / "clipvid.mp4", n=50, fps=10)  # 5 s: AVA seconds 900..905
    csv = tmp_path / "ann.csv"
    csv.write_text("".join(f"clipvid,{s},0.25,0.25,0.75,0.75,12,0\n" for s in (900, 902, 905)))
    ds = AvaClipDataset(
        tmp_path / "videos", csv, split="test", num_frames=4, sampling_rate=15, img_size=(24, 32),
        frame_source="video", backend="pyav",
    )  # fmt: skip
    assert ds.videos == {"clipvid": tmp_path / "videos" / "clipvid.mp4"}  # found by the default '{video_id}.*'
    # keyframe 902: AVA frames 30, 45, 60, 75 = 1.0, 1.5, 2.0, 2.5 s = video frames 10, 15, 20, 25 (grey 5 k)
    assert [round(g / 5) for g in _grey(ds[1]["video"])] == [10, 15, 20, 25]
    assert [round(g / 5) for g in _grey(ds[0]["video"])] == [0, 0, 0, 5]  # keyframe 900: clamped at the start
    torch.testing.assert_close(ds[1]["boxes"], torch.tensor([[8.0, 6.0, 24.0, 18.0]]))
    with pytest.raises(ValueError, match="keyframe clipvid,0905 is frame 50 but .*clipvid.mp4 has only 50 frames"):
        ds[2]
    _write_mp4(tmp_path / "videos" / "clipvid.avi", n=2, fps=10)
    with pytest.raises(ValueError, match="matches 2 files for clipvid"):
        AvaClipDataset(tmp_path / "videos", csv, split="test", frame_source="video")
    with pytest.raises(FileNotFoundError, match="1 of 1 AVA videos '\\{video_id\\}.webm' missing"):
        AvaClipDataset(tmp_path / "videos", csv, split="test", frame_source="video", video_pattern="{video_id}.webm")


def test_train_clips_resize_the_short_side_then_crop_img_size(ava_synth):
    ds = _ds(ava_synth, short_side=96)  # 48 x 64 frames -> 96 x 128, crops of 48 x 64
    truth = read_annotations(ava_synth.train_csv)
    dropped = 0
    for i, k in enumerate(ds.items):
        rng = np.random.default_rng([0, i, 0])  # the item's draws: u, v, then the flip
        u, v = rng.random(2)
        x0, y0, flip = int(u * 64), int(v * 48), rng.random() < 0.5
        boxes = truth[(k.video_id, k.second)].boxes * np.array([128, 96, 128, 96]) - [x0, y0, x0, y0]
        boxes = np.clip(boxes, 0, [64, 48, 64, 48])  # [K, 4] in the crop
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes = np.stack([64 - boxes[:, 2], boxes[:, 1], 64 - boxes[:, 0], boxes[:, 3]], 1) if flip else boxes
        item = ds[i]
        assert item["video"].shape == (3, 4, 48, 64) and keep.any(), i  # no fallback needed for these seeds
        torch.testing.assert_close(item["boxes"], torch.from_numpy(boxes[keep]).float())
        assert torch.equal(item["norm_boxes"], torch.from_numpy(truth[(k.video_id, k.second)].boxes[keep]))
        assert torch.equal(item["labels"], torch.from_numpy(truth[(k.video_id, k.second)].labels[keep]))
        assert len(item["box_scores"]) == keep.sum()
        dropped += int((~keep).sum())
    assert dropped > 0  # some persons fell outside their crops and left with their labels


def test_test_clips_are_stretched_to_test_size(ava_synth):
    kw = {"annotations": ava_synth.val_csv, "excluded": None, "short_side": 8, "test_size": (24, 80)}
    ds = _ds(ava_synth, split="test", **kw)  # short_side is for training only: 8 < img_size is no error here
    truth = read_annotations(ava_synth.val_csv)
    item = ds[1]
    assert item["video"].shape == (3, 4, 24, 80)  # not img_size (48, 64): evaluation clips have their own size
    expected = torch.from_numpy(truth[(item["video_id"], 903)].boxes) * torch.tensor([80, 24, 80, 24])  # x, y apart
    torch.testing.assert_close(item["boxes"], expected)
    assert _ds(ava_synth, split="test", annotations=ava_synth.val_csv)[0]["video"].shape == (3, 4, 48, 64)
    with pytest.raises(ValueError, match="short_side=8 is below both sides"):
        _ds(ava_synth, short_side=8)


def _flat_frames(root: Path, n: int = 100) -> Path:
    """JPEG folder 'flat' whose frame i is the flat colour (200, 2 i, 50); one person at keyframes 902 and 903."""
    (root / "frames" / "flat").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((FLAT, FLAT, 3), (200, 2 * i, 50), np.uint8)).save(
            root / "frames/flat" / f"flat_{i + 1:06d}.jpg"
        )
    csv = root / "flat.csv"
    csv.write_text("".join(f"flat,{s},0.25,0.25,0.75,0.75,12,0\n" for s in (902, 903)))
    return csv


def test_colour_jitter_one_shift_per_clip_drawn_after_the_crop_and_flip(tmp_path):
    kw = {"frames": tmp_path / "frames", "annotations": _flat_frames(tmp_path), "num_frames": 4, "sampling_rate": 2}
    kw |= {"img_size": FLAT, "short_side": FLAT}  # the crop is the whole frame
    plain, jittered = AvaClipDataset(**kw), AvaClipDataset(**kw, color_jitter=OmegaConf.create([20, 0.1, 0.1]))
    drawn = []
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        jittered.set_epoch(epoch)
        for i in range(2):
            rng = np.random.default_rng([0, i, epoch])
            rng.random(3)  # the crop's u, v and the flip come first
            shifts = draw_hsv_shifts(rng, 20, 0.1, 0.1)
            a, b = plain[i], jittered[i]
            assert torch.equal(b["boxes"], a["boxes"]) and torch.equal(b["labels"], a["labels"])  # same draws
            assert torch.equal(b["video"], hsv_jitter(a["video"], *shifts, dim=0)) and shifts != (0, 0, 0)
            assert not torch.equal(b["video"], a["video"])
            assert torch.equal(b["video"], b["video"][:, :, :1, :1].expand_as(b["video"]))  # flat frames stay flat
            drawn.append(shifts)
    assert len(set(drawn)) == 4  # a new shift per item and epoch
    again = AvaClipDataset(**kw, color_jitter=[20, 0.1, 0.1])
    again.set_epoch(1)
    assert torch.equal(again[1]["video"], jittered[1]["video"])  # reproducible per (seed, index, epoch)
    test_kw = kw | {"split": "test"}
    assert torch.equal(
        AvaClipDataset(**test_kw, color_jitter=[20, 0.1, 0.1])[0]["video"], AvaClipDataset(**test_kw)[0]["video"]
    )
    with pytest.raises(
        ValueError, match="data.train_dataset.color_jitter=\\[20, -0.1, 0.1\\] must be three non-negative"
    ):
        AvaClipDataset(**kw, color_jitter=[20, -0.1, 0.1])


def test_without_colour_jitter_train_clips_are_the_transformed_frames(ava_synth):
    ds = _ds(ava_synth, short_side=96, color_jitter=None)
    truth = read_annotations(ava_synth.train_csv)
    for i, k in enumerate(ds.items):
        pixels = torch.from_numpy(truth[(k.video_id, k.second)].boxes * np.array([64, 48, 64, 48], np.float32))
        clip, boxes, _ = AvaTrainTransform((48, 64), 96)(ds.load_frames(i), pixels, np.random.default_rng([0, i, 0]))
        item = ds[i]
        assert torch.equal(item["video"], clip) and torch.equal(item["boxes"], boxes)
