"""An AVA detection run stopped mid-epoch and resumed ends where the uninterrupted run ends: the data
module saves its sampler's position (smile.data.resume), box jitter and dropout draw from the restored RNG."""

from __future__ import annotations

import torch
from smile_testing import compose_cfg
from test_train import StopAt, assert_same_weights, net_state

from smile.train import run, setup

# 5 train videos x 2 keyframes - 1 excluded = 9 clips / batch 2 = 5 steps per epoch; stop at step 3
AVA = [
    "experiment=ava_synthetic",
    "data.synthetic.num_videos=6",
    "data.synthetic.val_videos=1",
    "data.batch_size=2",
    "trainer.max_epochs=2",
    "trainer.max_steps=-1",
    "trainer.check_val_every_n_epoch=2",
    "callbacks.checkpoint.every_n_train_steps=1",
    "~callbacks.progress_bar",
]


def test_ava_run_resumes_mid_epoch_to_the_uninterrupted_weights(tmp_path):
    def cfg(out: str):
        return compose_cfg([*AVA, f"paths.root={tmp_path}"], tmp_path / out)

    full = run(cfg("full"))
    assert full["global_step"] == 10
    first = setup(cfg("split"))
    first.trainer.callbacks.append(StopAt(3))
    assert first.fit()["global_step"] == 3
    state = torch.load(tmp_path / "split/checkpoints/last.ckpt", weights_only=False)["AvaDataModule"]
    assert (state["epoch"], state["consumed"]) == (0, 6)  # 3 batches of 2 keyframes in the first epoch
    second = setup(cfg("split"))
    assert second.ckpt_path and second.ckpt_path.endswith("last.ckpt")
    assert second.fit()["global_step"] == 10
    assert_same_weights(net_state(full["last_checkpoint"]), net_state(tmp_path / "split/checkpoints/last.ckpt"))
