"""SMILE end to end: objects, trajectory-aware masking, teacher targets, two masks per clip, stage 2."""

from __future__ import annotations

import pytest
import torch

from smile.train import run, setup

SMILE = [
    "video=demo",  # 8 frames of 64 px: a 4x4x4 token grid
    "data/motion=objects",
    "data/masking=trajectory",
    "data.masking.ratio=0.75",
    "data.train_dataset.num_samples=64",
    "data.batch_size=8",
    "trainer.max_epochs=3",  # 24 steps
    "model.optimizer.lr=0.1",
    "model.scheduler.warmup_steps=3",
    "callbacks.summary.window=6",
]


@pytest.mark.parametrize(
    "extra",
    [
        ["model=smile", "model/encoder=vit_tiny", "model/teacher=random"],  # feature targets, traj masking
        ["model.target.normalize=false", "data.masking.second_view=independent"],  # pixels, own trajectories
        [
            "model=smile",
            "model/encoder=vit_tiny",
            "data/masking=tube",
            "data.masking.masks_per_clip=2",
            "data.masking.ratio=0.75",
        ],  # objects with plain tube masking
    ],
    ids=["random-teacher", "pixels-independent", "tube-masking"],
)
def test_tiny_smile_pretraining_loss_falls(tiny_cfg, extra):
    r = setup(tiny_cfg(*SMILE, *extra))
    assert r.datamodule.motion is not None and r.datamodule.num_mask_views == 2
    out = r.fit()
    assert out["global_step"] == 24
    assert out["loss"]["last"] < 0.85 * out["loss"]["first"], out["loss"]


def test_checkpoints_hold_no_teacher_weights_and_stage2_loads_the_student(tiny_cfg, tmp_path):
    stage1 = run(
        tiny_cfg(*SMILE, "model=smile", "model/encoder=vit_tiny", "trainer.max_epochs=1", out=tmp_path / "stage1")
    )
    ckpt = torch.load(stage1["last_checkpoint"], map_location="cpu", weights_only=True)
    keys = ckpt["state_dict"].keys()
    assert keys and all(k.startswith("net.") for k in keys)  # nothing of target.teacher.*

    stage2 = setup(
        tiny_cfg(
            "video=demo",
            "model=smile",
            "model/encoder=vit_tiny",
            "data/masking=tube",
            "data.masking.masks_per_clip=2",
            f"model.init_from={stage1['last_checkpoint']}",
            "trainer.max_steps=2",
            out=tmp_path / "stage2",
        )
    )
    assert stage2.ckpt_path is None  # a new run, not a resume
    student = stage2.module.net.state_dict()
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(student[k.removeprefix("net.")], v), k
    stage2.fit()
    opt = torch.load(tmp_path / "stage2/checkpoints/last.ckpt", weights_only=True)["optimizer_states"][0]
    steps = {int(s["step"]) for s in opt["state"].values()}
    assert steps == {2}  # fresh AdamW state: only stage 2's two steps


def test_stage2_refuses_a_mismatched_checkpoint(tiny_cfg, tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"encoder_to_decoder.weight": torch.zeros(3, 3)}}, bad)
    with pytest.raises(ValueError, match="shape mismatch.*encoder_to_decoder"):
        setup(tiny_cfg(f"model.init_from={bad}"))


def test_reference_sawtooth_schedule_jumps_back_each_epoch(tiny_cfg):
    r = setup(
        tiny_cfg(
            *SMILE,
            "model.scheduler.mode=reference_sawtooth",
            "model.scheduler.warmup_steps=-1",
            "model.scheduler.warmup_epochs=1",
            "model.scheduler.schedule_epochs=10",
        )
    )
    lrs = []

    class Rec(__import__("lightning").Callback):
        def on_train_batch_start(self, trainer, *args):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    r.trainer.callbacks.append(Rec())
    r.fit()
    # 8 steps per epoch, 2 masks per clip -> the schedule advances 4 per epoch: epoch 1 starts at index 4
    assert lrs[8] == pytest.approx(lrs[4]) and lrs[8] > lrs[7]  # back up to an earlier point of the cosine
