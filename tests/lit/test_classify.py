"""ClassifierLitModule: finetuning learns, Mixup/CutMix, linear probe, EMA, multi-view test."""

from __future__ import annotations

import functools
import math
import warnings
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from smile.callbacks.ema import EMA_KEY, EMAWeights
from smile.data import SyntheticVideoDataset, VideoDataModule
from smile.data.mixup import ClipMixup, mix_video
from smile.lit import ClassifierLitModule, NonFiniteLossError
from smile.lit.classify import HEAD_MODULES
from smile.lit.common import NonFiniteGuard
from smile.lit.optim import WarmupCosine
from smile.models import create_encoder

FRAMES, SIZE, CLASSES, BATCH = 8, 32, 8, 16
FAST_LR = 0.16  # per 256 clips: 1e-2 at the test's global batch 16


def adamw(lr: float = FAST_LR, **kw: Any) -> functools.partial:
    """What Hydra builds from model.optimizer (adamw_finetune.yaml): a partial AdamW."""
    return functools.partial(torch.optim.AdamW, **{"lr": lr, "weight_decay": 0.05, "betas": (0.9, 0.999), **kw})


def _module(net: nn.Module, num_classes: int = CLASSES, warmup_steps: int = 10, **kw: Any) -> ClassifierLitModule:
    """The classifier as model=classifier builds it, with the test's fast lr and no min lr."""
    kw.setdefault("optimizer", adamw(fused=None))
    kw.setdefault("batch_size", BATCH)
    schedule = WarmupCosine(min_lr=0.0, warmup_steps=warmup_steps)
    return ClassifierLitModule(net, num_classes, scheduler=schedule, **kw)


class Clips(Dataset):
    """In-memory uint8 clips ``[N, 3, T, H, W]`` with labels, items shaped like the real datasets."""

    def __init__(self, video: torch.Tensor, label: torch.Tensor) -> None:
        self.video, self.label = video, label

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.video[i], "label": self.label[i], "index": torch.tensor(i)}


def _render(num: int, split: str, cue: bool) -> Clips:
    """SyntheticVideoDataset clips. ``cue`` adds a per-class brightness offset.

    Motion alone takes this 2-block, 32-wide ViT about a thousand steps from scratch (the dataset
    hides the label from any single frame on purpose), far beyond a unit test's budget; the
    offset makes the label learnable in tens of steps, which is what a test of the training
    machinery (schedule, lr scaling, layer decay, metrics) needs.
    """
    ds = SyntheticVideoDataset(num, num_frames=FRAMES, img_size=SIZE, split=split)
    items = [ds[i] for i in range(num)]
    video = torch.stack([it["video"] for it in items])  # uint8 [N, 3, T, H, W]
    label = torch.stack([it["label"] for it in items])
    if cue:
        video = video // 4 + (24 * label).to(torch.uint8).view(-1, 1, 1, 1, 1)
    return Clips(video, label)


@pytest.fixture(scope="module")
def data() -> dict[str, Clips]:
    return {"train": _render(256, "train", True), "val": _render(128, "val", True)}


def _net(**kw: Any) -> nn.Module:
    kw.setdefault("drop_path", 0.0)
    return create_encoder("vit_tiny_patch16", num_classes=CLASSES, num_frames=FRAMES, img_size=SIZE, **kw)


def _datamodule(data: dict[str, Clips], batch_size: int = BATCH, **kw: Any) -> VideoDataModule:
    return VideoDataModule(data["train"], data["val"], batch_size=batch_size, pin_memory=False, masking=None, **kw)


def _trainer(max_steps: int, **kw: Any) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=1000,  # validate explicitly at the end
    )
    return L.Trainer(max_steps=max_steps, **{**defaults, **kw})


class Recorder(L.Callback):
    """Per-step losses and the modes of the net's children during training."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.modes: list[dict[str, bool]] = []

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        self.modes.append({n: m.training for n, m in module.net.named_modules() if n})

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, out: Any, batch: Any, idx: int) -> None:
        self.losses.append(float(out["loss"]))


# ----------------------------------------------------------------------------------- finetuning
def test_finetune_learns_with_layer_decay_and_scaled_lr(data):
    L.seed_everything(0, verbose=False)  # numpy too: timm's Mixup draws from it
    module = _module(_net(), warmup_steps=6, label_smoothing=0.0)
    trainer = _trainer(60)
    trainer.fit(module, datamodule=_datamodule(data))
    [metrics] = trainer.validate(module, datamodule=_datamodule(data), verbose=False)
    assert metrics["val/acc1"] > 0.5  # chance is 1/8; seeds 0-5 gave 0.80-0.90
    assert metrics["val/acc5"] >= metrics["val/acc1"] and 0 < metrics["val/loss"] < math.log(CLASSES)
    groups = {g["name"]: g for g in trainer.optimizers[0].param_groups}
    peak = 0.16 * BATCH / 256  # lr per 256 x global batch / 256
    assert groups["layer_3_decay"]["initial_lr"] == pytest.approx(peak)  # head
    assert groups["layer_0_decay"]["initial_lr"] == pytest.approx(peak * 0.75**3)  # patch embed
    assert groups["layer_0_decay"]["lr"] == pytest.approx(0.0, abs=peak * 1e-3)  # cosine ended at min_lr 0


def test_finetune_with_mixup_cutmix_and_smoothing_lowers_a_finite_loss(data):
    L.seed_everything(0, verbose=False)  # numpy too: timm's Mixup draws from it
    module = _module(_net(), warmup_steps=6, label_smoothing=0.1)
    recorder, mixup = Recorder(), ClipMixup(CLASSES, label_smoothing=0.1)
    _trainer(60, callbacks=[recorder]).fit(module, datamodule=_datamodule(data, mixup=mixup))
    losses = torch.tensor(recorder.losses)
    assert len(losses) == 60 and torch.isfinite(losses).all()
    assert losses[-15:].mean() < losses[:15].mean() - 0.05  # seeds 0-5: 0.08-0.19 lower
    assert module.nonfinite.total == 0


def test_cutmix_cuts_the_same_box_from_every_frame_and_channel():
    cfg = {"mixup_alpha": 0.0, "cutmix_alpha": 1.0, "cutmix_minmax": (0.3, 0.7)}  # a box that is never empty
    mixup = ClipMixup(4, label_smoothing=0.0, **cfg).mixup
    video = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 3, 4, 16, 16).clone()  # clip b is all b
    L.seed_everything(1, verbose=False)  # timm draws lambda and the box from numpy
    mixed, target = mix_video(mixup, video, torch.arange(4))
    pasted = mixed[0] == 3.0  # clip 0 receives clip 3 (the batch flipped) inside the box
    assert pasted.any() and not pasted.all()
    assert (pasted == pasted[0, 0]).all()  # one box: every channel and frame the same
    lam = 1.0 - pasted[0, 0].float().mean()
    assert target[0, 0] == pytest.approx(lam.item()) and target[0, 3] == pytest.approx(1 - lam.item())


def test_odd_batch_skips_mixup_with_one_warning():
    mixup = ClipMixup(CLASSES, label_smoothing=0.1)
    video, label = torch.randn(3, 3, FRAMES, SIZE, SIZE), torch.tensor([0, 1, 2])
    with pytest.warns(UserWarning, match="odd batch"):
        out, target = mixup(video.clone(), label)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixup(video.clone(), label)  # warned once only
    assert torch.equal(out, video)
    assert target[0, 0] == pytest.approx(0.9 + 0.1 / CLASSES) and target[0, 1] == pytest.approx(0.1 / CLASSES)


def test_global_batch_counts_devices_accumulation_and_repeated_samples():
    module = _module(_net(), batch_size=4, num_sample=2)
    module._trainer = SimpleNamespace(world_size=2, accumulate_grad_batches=3)
    assert module.global_batch() == 4 * 2 * 2 * 3
    module._trainer = None


def test_a_non_finite_loss_is_skipped_without_touching_weights_or_ema(data):
    L.seed_everything(0, verbose=False)
    module, ema = _module(_net()), EMAWeights(decay=0.9)
    forward, calls, snapshots = module.net.forward, [], []

    def poisoned(video: torch.Tensor) -> torch.Tensor:  # the second training batch gives NaN logits
        calls.append(1)
        weights = {k: v.clone() for k, v in module.net.state_dict().items()}
        snapshots.append((weights, ema.module.head.weight.clone()))
        out = forward(video)
        return out * float("nan") if len(calls) == 2 else out

    module.net.forward = poisoned
    _trainer(3, callbacks=[ema]).fit(module, datamodule=_datamodule(data))
    assert module.nonfinite.total == 1 and module.nonfinite.in_row == 0
    (net_before, ema_before), (net_after, ema_after) = snapshots[1], snapshots[2]
    assert all(torch.equal(v, net_after[k]) for k, v in net_before.items())  # no optimizer update
    assert torch.equal(ema_before, ema_after)  # and no EMA update


def test_nonfinite_guard_counts_and_stops():
    guard = NonFiniteGuard(max_in_row=2)
    assert guard.check(torch.tensor(1.0), step=0)
    assert not guard.check(torch.tensor(float("inf")), step=1)
    assert guard.check(torch.tensor(0.5), step=2) and guard.in_row == 0 and guard.total == 1
    assert not guard.check(torch.tensor(float("nan")), step=3)
    with pytest.raises(NonFiniteLossError, match="2 consecutive non-finite losses"):
        guard.check(torch.tensor(float("nan")), step=4, last_checkpoint="last.ckpt")


# ----------------------------------------------------------------------------------- linear probe
def test_linear_probe_trains_only_fc_norm_and_head_and_keeps_the_encoder_in_eval(data):
    L.seed_everything(0, verbose=False)
    net = _net(drop_path=0.1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = _module(net, freeze_encoder=True)
    recorder = Recorder()
    _trainer(8, callbacks=[recorder]).fit(module, datamodule=_datamodule(data))
    head = tuple(f"{m}." for m in HEAD_MODULES)
    for key, value in net.state_dict().items():
        if key.startswith(head):
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, before[key]), key
    assert all(not m.requires_grad for n, m in net.named_parameters() if not n.startswith(head))
    for modes in recorder.modes:
        assert all(modes[n] == n.startswith(HEAD_MODULES) for n in modes), modes
    module.train()
    assert not net.training and not net.blocks[0].training and net.head.training


# ----------------------------------------------------------------------------------- EMA
def test_ema_is_updated_per_optimizer_step_validated_and_checkpointed(data, tmp_path):
    L.seed_everything(0, verbose=False)
    module, callback = _module(_net()), EMAWeights(decay=0.9)
    updates = []
    trainer = _trainer(6, accumulate_grad_batches=2, limit_val_batches=2, callbacks=[callback])
    callback.setup(trainer, module, "fit")
    update = callback.ema.update
    callback.ema.update = lambda net, step=None: (updates.append(step), update(net, step))
    trainer.fit(module, datamodule=_datamodule(data))
    assert len(updates) == trainer.global_step == 6  # 12 batches, one update per optimizer step
    [metrics] = trainer.validate(module, datamodule=_datamodule(data), verbose=False)
    assert {"val_ema/acc1", "val_ema/acc5", "val_ema/loss", "val/acc1"} <= set(metrics)
    live, ema = module.net.state_dict(), callback.module.state_dict()
    assert not torch.equal(live["head.weight"], ema["head.weight"])
    assert not torch.equal(live["blocks.0.attn.qkv.weight"], ema["blocks.0.attn.qkv.weight"])

    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=False)
    assert all(k.startswith("net.") for k in saved["state_dict"])
    restored = EMAWeights(decay=0.9)
    restored.on_load_checkpoint(trainer, _module(_net()), saved)
    for key, value in restored.module.state_dict().items():
        assert torch.equal(value, ema[key]), key
    for key, value in saved[EMA_KEY].items():
        assert torch.equal(value, ema[key]), key
    for key, value in saved["state_dict"].items():
        assert torch.equal(value, live[key.removeprefix("net.")]), key


class SaveAt(L.Callback):
    """Writes a checkpoint at one optimizer step, as ModelCheckpoint(every_n_train_steps) would."""

    def __init__(self, step: int, path: str) -> None:
        self.step, self.path, self.done = step, path, False

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, out: Any, batch: Any, idx: int) -> None:
        if trainer.global_step == self.step and not self.done:
            trainer.save_checkpoint(self.path)
            self.done = True


def test_resume_from_a_mid_run_checkpoint_reproduces_weights_and_ema(data, tmp_path):
    def run(**fit: Any) -> tuple[ClassifierLitModule, EMAWeights]:
        L.seed_everything(0, verbose=False)
        module, ema = _module(_net()), EMAWeights(decay=0.9)
        callbacks = [ema, SaveAt(4, str(tmp_path / "mid.ckpt"))]
        _trainer(8, callbacks=callbacks).fit(module, datamodule=_datamodule(data), **fit)
        return module, ema

    (whole, whole_ema), (resumed, resumed_ema) = run(), run(ckpt_path=tmp_path / "mid.ckpt")
    for ref, new in ((whole.net, resumed.net), (whole_ema.module, resumed_ema.module)):
        for key, value in ref.state_dict().items():
            assert torch.equal(value, new.state_dict()[key]), key


# ----------------------------------------------------------------------------------- multi-view test
# Per-view logits for 4 videos x 3 views, 3 classes. In videos 0 and 1 two weak views out-vote one
# confident view under majority voting, but the confident one wins the averaged softmax.
VIEW_LOGITS = torch.tensor(
    [
        [[2.0, 1.9, 0.0], [2.0, 1.9, 0.0], [0.0, 4.0, 0.0]],  # votes 0, 0, 1
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]],  # votes 2, 2, 0
        [[3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 0.0, 0.0]],
        [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]],
    ]
)
LABELS = [1, 2, 0, 0]


class ViewTable(nn.Module):
    """A fake classifier: the clip's first pixel is a row index into fixed logits."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(VIEW_LOGITS.flatten(0, 1).clone())  # [videos * views, K]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.table[video[:, 0, 0, 0, 0].long()]


class MultiViewItems(Dataset):
    def __len__(self) -> int:
        return len(LABELS)

    def __getitem__(self, i: int) -> dict[str, Any]:
        views = torch.arange(3.0).add(3 * i).view(3, 1, 1, 1, 1).expand(3, 3, 2, 4, 4)  # [V, 3, T, H, W]
        return {"video": views, "label": torch.tensor(LABELS[i]), "video_id": f"vid{i}"}


def _softmax(row: list[float]) -> list[float]:
    exp = [math.exp(x) for x in row]
    return [e / sum(exp) for e in exp]


def test_multi_view_test_averages_softmax_not_votes():
    expected = [  # hand computation: mean over views of each view's softmax
        [sum(col) / 3 for col in zip(*(_softmax(v) for v in video.tolist()), strict=True)] for video in VIEW_LOGITS
    ]
    assert [round(p, 3) for p in expected[0]] == [0.333, 0.617, 0.050]
    assert [round(p, 3) for p in expected[1]] == [0.470, 0.144, 0.386]
    votes = [torch.mode(v.argmax(-1)).values.item() for v in VIEW_LOGITS]
    module = _module(ViewTable(), num_classes=3)
    loader = DataLoader(MultiViewItems(), batch_size=2)
    trainer = _trainer(1)
    [metrics] = trainer.test(module, dataloaders=loader, verbose=False)

    preds = [p["pred"] for p in module.test_predictions]
    assert preds == [1, 0, 0, 0] and votes[:2] == [0, 2]  # averaging and voting disagree on 0 and 1
    assert [p["video_id"] for p in module.test_predictions] == ["vid0", "vid1", "vid2", "vid3"]
    assert [p["label"] for p in module.test_predictions] == LABELS
    for pred, probs in zip(module.test_predictions, expected, strict=True):
        assert pred["top5"] == sorted(range(3), key=lambda k: -probs[k])  # top-k capped at 3 classes
        assert pred["top5_prob"] == pytest.approx(sorted(probs, reverse=True), abs=1e-6)
    assert metrics["test/acc1"] == pytest.approx(3 / 4)
    assert metrics["test/acc1_class_mean"] == pytest.approx((2 / 2 + 1 / 1 + 0 / 1) / 3)
    assert metrics["test/acc5"] == pytest.approx(1.0)
    assert torch.equal(module.test_confusion, torch.tensor([[2, 0, 0], [0, 1, 0], [1, 0, 0]]))


def test_top5_is_not_merged_with_top1_when_the_first_batch_agrees():
    """torchmetrics' compute groups once made acc5 report acc1 (first batch: equal counts)."""
    from smile.metrics import accuracy_metrics

    for average in ("micro", "macro"):
        metrics = accuracy_metrics(6, average=average)
        first = torch.tensor([[5.0, 0, 0, 0, 0, 0], [0, 5.0, 0, 0, 0, 0]])  # both right at top-1 and top-5
        metrics.update(first, torch.tensor([0, 1]))
        second = torch.tensor([[0, 5.0, 4, 3, 2, 1], [0, 5.0, 4, 3, 2, 1]])  # wrong at top-1, right at top-5
        metrics.update(second, torch.tensor([2, 3]))
        out = metrics.compute()
        assert out["acc1"].item() == pytest.approx(0.5)
        assert out["acc5"].item() == pytest.approx(1.0)
