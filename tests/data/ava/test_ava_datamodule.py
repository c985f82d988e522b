"""AvaDataModule: synthetic data written once and atomically, datasets built from Hydra partials, float batches."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from smile.data.ava import AvaClipDataset, AvaDataModule, AvaEvalFiles
from smile.data.ava.datamodule import SyntheticSpec, prepare_synthetic
from smile.video import normalize


def _config(root) -> dict:
    """The shape of a Hydra data node: partial datasets pointing into the synthetic root."""
    ann = f"{root}/annotations"
    dataset = {
        "_target_": "smile.data.ava.AvaClipDataset",
        "_partial_": True,
        "frames": f"{root}/frames",
        "num_frames": 4,
        "sampling_rate": 2,
        "img_size": [32, 48],
    }
    return {
        "_target_": "smile.data.ava.AvaDataModule",
        "train_dataset": dataset | {"annotations": f"{ann}/ava_train_v2.2.csv", "split": "train",
                                    "excluded": f"{ann}/ava_train_excluded_timestamps_v2.2.csv"},
        "val_dataset": dataset | {"annotations": f"{ann}/ava_val_v2.2.csv", "split": "test",
                                  "excluded": f"{ann}/ava_val_excluded_timestamps_v2.2.csv",
                                  "proposals": f"{ann}/ava_dense_proposals_val.FAIR.recall_93.9.pkl"},
        "label_map": f"{ann}/ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        "batch_size": 2,
        "num_workers": 0,
        "synthetic": {"root": str(root), "num_videos": 3, "seconds": 5, "seed": 0},
    }  # fmt: skip


def test_synthetic_written_once_and_atomically(tmp_path):
    spec = SyntheticSpec(str(tmp_path / "ava"), num_videos=2, seconds=4, seed=1)
    assert prepare_synthetic(spec) is True
    files = sorted(p for p in (tmp_path / "ava").rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    assert len(files) == 2 * 4 * 30 + 7 + 1  # frames; 2 CSVs, label map, 2 excluded, 2 proposals; the marker
    assert prepare_synthetic(spec) is False
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert [p.name for p in tmp_path.iterdir()] == ["ava"]  # no temporary folder left
    with pytest.raises(ValueError, match="written with .*seed.*: delete the folder or choose another root"):
        prepare_synthetic(SyntheticSpec(spec.root, 2, 4, seed=2))
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="other exists but is not a synthetic AVA"):
        prepare_synthetic(SyntheticSpec(str(tmp_path / "other"), 2, 4, 0))
    with pytest.raises(ValueError, match="missing \\['seed'\\], unknown \\['videos'\\]"):
        SyntheticSpec.parse({"root": "x", "videos": 2, "num_videos": 2, "seconds": 4})


def test_partials_built_after_prepare_and_batches_normalised(tmp_path):
    root = tmp_path / "synthetic_ava"
    dm = instantiate(OmegaConf.create(_config(root)))
    assert not root.exists()  # nothing read at construction: the files do not exist yet
    dm.prepare_data()
    dm.setup("fit")
    assert isinstance(dm.datasets["train"], AvaClipDataset)
    assert len(dm.datasets["train"]) == 5 and len(dm.datasets["val"]) == 3
    assert dm.eval_files == AvaEvalFiles(
        root / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        root / "annotations" / "ava_val_v2.2.csv",
        root / "annotations" / "ava_val_excluded_timestamps_v2.2.csv",
    )
    train = dm.train_dataloader()
    assert len(train) == 3  # 5 keyframes, batches of 2, the last one kept
    batch = next(iter(train))
    assert batch["video"].shape == (2, 3, 4, 32, 48) and batch["video"].dtype == torch.uint8
    uint8 = batch["video"].clone()
    out = dm.on_after_batch_transfer(batch, 0)
    assert out["video"].dtype == torch.float32
    torch.testing.assert_close(out["video"], normalize(uint8))
    assert len(out["boxes"]) == 2 and out["timestamp"].dtype == torch.int64
    test = next(iter(dm.test_dataloader()))  # no test dataset: the val dataset, in order
    assert test["video_id"] == ["synth000002"] * 2 and test["timestamp"].tolist() == [902, 903]
    assert [len(b) for b in test["boxes"]] == [4, 4] and not any(lab.any() for lab in test["labels"])


def test_built_datasets_and_a_missing_label_map(tmp_path, ava_synth):
    train = AvaClipDataset(ava_synth.frames, ava_synth.train_csv, ava_synth.excluded_csv, num_frames=2, img_size=16)
    dm = AvaDataModule(train, label_map=tmp_path / "none.pbtxt", batch_size=4)
    with pytest.raises(FileNotFoundError, match="data.label_map=.*none.pbtxt not found"):
        dm.setup("fit")
    assert dm.datasets["train"] is train and dm.eval_files is None  # no evaluation dataset
    assert [len(b["video_id"]) for b in dm.train_dataloader()] == [4, 1]
    with pytest.raises(RuntimeError, match="no val dataset: give data.val_dataset"):
        dm.val_dataloader()


def test_worker_processes_load_the_same_batches(ava_synth):
    def batches(workers: int) -> list[dict]:
        train = AvaClipDataset(ava_synth.frames, ava_synth.train_csv, ava_synth.excluded_csv, num_frames=2, img_size=16)
        dm = AvaDataModule(train, label_map=ava_synth.label_map, batch_size=2, num_workers=workers, seed=3)
        dm.setup("fit")
        return list(dm.train_dataloader())

    for a, b in zip(batches(0), batches(2), strict=True):
        assert a["video_id"] == b["video_id"] and torch.equal(a["video"], b["video"])
        assert all(torch.equal(x, y) for x, y in zip(a["boxes"], b["boxes"], strict=True))
