"""Composed experiments carry the published recipes (SPEC §7.3): UCF101/HMDB51 finetuning, VideoMAE K400."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from smile_testing import compose_cfg

from smile.models import create_encoder


def composed(name: str, tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_cfg([f"experiment={name}", *overrides], tmp_path)


def effective_lr(cfg: DictConfig, lr: float, gpus: int) -> float:
    """lr x global batch / 256 with the global batch in samples, as smile.lit.optim counts it."""
    samples = cfg.data.batch_size * cfg.data.train_dataset.num_sample * gpus
    return lr * samples / 256


@pytest.mark.parametrize(("name", "data"), [("finetune_ucf101_vitb", "ucf101"), ("finetune_hmdb51_vitb", "hmdb51")])
def test_ucf101_and_hmdb51_finetuning_follow_videomaes_ucf101_script(tmp_path, name, data):
    cfg = composed(name, tmp_path)
    assert cfg.name == name
    assert cfg.data.train_dataset.records_or_list_file.format == data and cfg.data.source.fold == 1
    m, d = cfg.model, cfg.data
    assert (m.layer_decay, list(m.optimizer.betas), m.optimizer.weight_decay) == (0.7, [0.9, 0.999], 0.05)
    assert (m.encoder.drop_path, m.encoder.fc_drop, m.encoder.name) == (0.2, 0.5, "vit_base_patch16")
    assert (m.scheduler.warmup_epochs, m.scheduler.warmup_steps, cfg.trainer.max_epochs) == (5, -1, 100)
    assert (d.batch_size, d.train_dataset.num_sample, d.train_dataset.mode) == (16, 2, "train")
    assert (d.test_dataset.test_clips, d.test_dataset.test_crops, d.test_dataset.short_side) == (5, 3, 224)
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.img_size) == (16, 4, 224)
    # the reference: --lr 5e-4 --min_lr 1e-5 per 256 *videos* (8 GPUs x 16 = 128 -> 2.5e-4, 5e-6)
    assert effective_lr(cfg, m.optimizer.lr, 8) == pytest.approx(5e-4 * 128 / 256)
    assert effective_lr(cfg, m.scheduler.min_lr, 8) == pytest.approx(1e-5 * 128 / 256)
    assert m.module.num_sample == 2  # the lr rule sees the repeated augmentation
    mix = d.mixup  # the reference's defaults, which its UCF101 script leaves on
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.prob, mix.label_smoothing) == (0.8, 1.0, 1.0, 0.1)


def test_k400_finetuning_keeps_its_own_recipe(tmp_path):
    cfg = composed("finetune_k400_vitb", tmp_path)
    assert (cfg.model.optimizer.lr, cfg.model.layer_decay, cfg.model.encoder.drop_path) == (1e-3, 0.75, 0.1)
    assert (cfg.model.encoder.fc_drop, cfg.data.train_dataset.num_sample, cfg.data.test_dataset.test_clips) == (
        0.0,
        1,
        7,
    )


def test_videomae_k400_baseline_is_the_published_2048_clip_run(tmp_path):
    cfg = composed("videomae_k400_vitb", tmp_path, "trainer=ddp", "trainer.num_nodes=8")
    assert (cfg.data.batch_size, cfg.trainer.num_nodes, cfg.trainer.strategy) == (32, 8, "ddp")
    global_batch = cfg.data.batch_size * 8 * cfg.trainer.num_nodes  # 8 GPUs per node
    assert global_batch == 2048
    assert cfg.model.optimizer.lr * global_batch / 256 == pytest.approx(1.2e-3)
    assert (cfg.data.masking.ratio, cfg.model.decoder.depth, list(cfg.model.optimizer.betas)) == (0.9, 4, [0.9, 0.95])
    sched = cfg.model.scheduler
    assert (sched.warmup_epochs, sched.warmup_steps, sched.schedule_epochs, cfg.trainer.max_epochs) == (
        40,
        -1,
        801,
        800,
    )


def test_fc_drop_changes_the_train_mode_output_only():
    def classifier(fc_drop: float) -> torch.nn.Module:
        torch.manual_seed(0)
        overrides = {"embed_dim": 32, "depth": 1, "num_heads": 2}
        return create_encoder(
            "vit_tiny_patch16",
            num_frames=4,
            img_size=32,
            global_pool="mean",
            num_classes=5,
            head_init_scale=1.0,
            fc_drop=fc_drop,
            **overrides,
        )

    plain, dropped = classifier(0.0), classifier(0.5)
    video = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(plain.eval()(video), dropped.eval()(video))  # same weights, dropout off
        torch.manual_seed(2)
        a = dropped.train()(video)
        torch.manual_seed(2)
        b = plain.train()(video)
        torch.manual_seed(3)
        c = dropped(video)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)  # dropout on, redrawn each call


@pytest.mark.parametrize("name", ["probe_ucf101_vitb", "probe_hmdb51_vitb", "lowshot_ucf101_vitb"])
def test_probe_and_lowshot_keep_their_own_recipe(tmp_path, name):
    cfg = composed(name, tmp_path)
    assert (cfg.model.optimizer.lr, cfg.model.scheduler.min_lr, cfg.model.encoder.fc_drop) == (1e-3, 1e-6, 0.0)
    assert (cfg.data.batch_size, cfg.data.train_dataset.num_sample, cfg.data.test_dataset.test_clips) == (4, 1, 7)
    assert cfg.data.source.fold == 1
