"""NonFiniteGuard: host mode (skip by returning None) and the sync-free device mode of fused optimizers."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from smile.data import VideoDataModule
from smile.lit import ClassifierLitModule, NonFiniteLossError
from smile.lit.common import NonFiniteGuard
from smile.lit.optim import WarmupCosine
from smile.models import create_encoder
from smile.teachers import PixelTarget
from smile.train import setup

FRAMES, SIZE, CLASSES, BATCH = 4, 32, 4, 4


def _snapshot(module: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    state = {(i, k): v.clone() for i, p in enumerate(module.parameters()) for k, v in opt.state[p].items()}
    return weights, state


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(v, b[k]) for k, v in a.items())


# ------------------------------------------------------------------------- guard + fused AdamW, no Lightning
@contextmanager
def no_host_reads() -> Iterator[None]:
    """Fail on any tensor -> Python read (what would be a host-device sync on a GPU)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("host read of a tensor")

    saved = {name: getattr(torch.Tensor, name) for name in ("item", "tolist", "__bool__", "__float__", "__int__")}
    try:
        for name in saved:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


def _fused_step(net: nn.Module, opt: torch.optim.Optimizer, guard: NonFiniteGuard, step: int, bad: bool) -> None:
    """What Lightning runs for one step in device mode: loss, backward, hook, clipping, step."""
    loss = net(torch.randn(8, 6)).pow(2).mean()
    if bad:
        loss = loss * float("nan")
    polls = (guard._steps + 1) % guard.check_every == 0
    with no_host_reads():  # the guard reads nothing on the host between its checks
        guard.observe(loss)
    loss.backward()
    if polls:
        guard.before_step(step)
    else:
        with no_host_reads():
            guard.before_step(step)  # on_before_optimizer_step, which Lightning calls before clipping
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)  # NaN gradients stay NaN
    opt.step()
    opt.zero_grad(set_to_none=True)


def test_fused_adamw_skips_a_nan_step_on_the_device_bitwise():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.05, fused=True)
    guard = NonFiniteGuard(max_in_row=3, check_every=100)
    assert guard.attach(opt) and guard.device_mode
    _fused_step(net, opt, guard, 0, bad=False)
    before = _snapshot(net, opt)
    _fused_step(net, opt, guard, 1, bad=True)
    after = _snapshot(net, opt)
    assert _equal(before[0], after[0])  # weights
    assert _equal(before[1], after[1])  # exp_avg, exp_avg_sq and step
    assert all(v.item() == 1.0 for (_, k), v in after[1].items() if k == "step")
    assert guard.total == 0  # not read on the host yet
    _fused_step(net, opt, guard, 2, bad=False)
    updated = _snapshot(net, opt)
    assert not _equal(after[0], updated[0]) and all(torch.isfinite(v).all() for v in updated[0].values())
    assert all(v.item() == 2.0 for (_, k), v in updated[1].items() if k == "step")
    guard.poll()
    assert guard.total == 1 and guard.in_row == 0
    guard.detach()
    assert not hasattr(opt, "found_inf") and not guard.device_mode


def test_device_mode_raises_a_full_streak_at_the_next_host_check():
    torch.manual_seed(0)
    net = nn.Linear(6, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, fused=True)
    guard = NonFiniteGuard(max_in_row=2, check_every=4)
    guard.attach(opt)
    for step, bad in enumerate([False, True, True]):  # the streak is full at step 2...
        _fused_step(net, opt, guard, step, bad)
    with pytest.raises(NonFiniteLossError, match=r"2 consecutive non-finite losses, the last at step 2\. "):
        _fused_step(net, opt, guard, 3, bad=False)  # ...and found at the 4th step's check, even after a finite one
    assert guard.total == 2


def test_only_fused_optimizers_get_the_device_mode():
    params = [nn.Parameter(torch.zeros(2))]
    assert not NonFiniteGuard(3).attach(torch.optim.AdamW(params))
    assert not NonFiniteGuard(3).attach(torch.optim.SGD(params, lr=0.1))
    assert NonFiniteGuard(3).attach(torch.optim.Adam(params, fused=True))


# ------------------------------------------------------------------------------------------- with Lightning
class Clips(Dataset):
    def __init__(self, n: int = 4 * BATCH) -> None:
        gen = torch.Generator().manual_seed(0)
        self.video = torch.randint(0, 256, (n, 3, FRAMES, SIZE, SIZE), dtype=torch.uint8, generator=gen)
        self.label = torch.arange(n) % CLASSES

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.video[i], "label": self.label[i]}


class Watch(L.Callback):
    """Weights and optimizer state before every step, and what every training_step returned."""

    def __init__(self) -> None:
        self.before: list[tuple[dict, dict]] = []
        self.outputs: list[Any] = []

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        self.before.append(_snapshot(module.net, trainer.optimizers[0]))

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, out: Any, batch: Any, idx: int) -> None:
        self.outputs.append(out)


def _fit(fused: bool, bad_calls: set[int], steps: int, **guard: int) -> tuple[ClassifierLitModule, Watch]:
    L.seed_everything(0, verbose=False)
    net = create_encoder("vit_tiny_patch16", num_classes=CLASSES, num_frames=FRAMES, img_size=SIZE, drop_path=0.0)
    optimizer = functools.partial(torch.optim.AdamW, lr=0.05, weight_decay=0.05, betas=(0.9, 0.999), fused=fused)
    schedule = WarmupCosine(min_lr=1e-6, warmup_steps=0)
    module = ClassifierLitModule(net, CLASSES, optimizer, schedule, batch_size=BATCH, **guard)
    forward, calls = net.forward, [0]

    def poisoned(video: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        out = forward(video)
        return out * float("nan") if calls[0] in bad_calls else out

    net.forward = poisoned
    watch = Watch()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        gradient_clip_val=1.0,  # clipping NaN gradients must not defeat the skip
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[watch],
    )
    dm = VideoDataModule(Clips(), batch_size=BATCH, pin_memory=False, masking=None, num_classes=CLASSES)
    trainer.fit(module, datamodule=dm)
    watch.before.append(_snapshot(module.net, trainer.optimizers[0]))
    return module, watch


@pytest.mark.parametrize("fused", [False, True], ids=["host-mode", "fused-device-mode"])
def test_a_nan_step_leaves_weights_and_optimizer_state_unchanged(fused):
    module, watch = _fit(fused, bad_calls={2}, steps=3)
    (w1, s1), (w2, s2), (w3, s3) = watch.before[1:4]
    assert _equal(w1, w2) and _equal(s1, s2)  # step 2 (NaN) changed nothing, optimizer state included
    assert not _equal(w2, w3)  # the next finite step trains
    assert all(torch.isfinite(v).all() for v in w3.values())
    assert module.nonfinite.total == 1 and module.nonfinite.in_row == 0  # fused: read at the end of training
    if fused:  # the loss goes to backward; the fused kernel skipped the update
        assert torch.isnan(watch.outputs[1]["loss"])
        assert not module.nonfinite.device_mode and not hasattr(module.trainer.optimizers[0], "found_inf")
    else:  # training_step returned None (Lightning hands callbacks {}): no backward, no step
        assert not watch.outputs[1] and torch.isfinite(watch.outputs[2]["loss"])


def test_fused_streak_stops_training_at_the_next_host_check():
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive non-finite losses, the last at step 3\. "):
        _fit(True, bad_calls=set(range(2, 100)), steps=20, max_nonfinite_steps=3, nonfinite_check_every=5)


def test_pretraining_with_fused_adamw_skips_on_the_device(tiny_cfg, monkeypatch):
    original, calls = PixelTarget.forward, [0]

    def forward(self: PixelTarget, video: torch.Tensor) -> torch.Tensor:  # NaN targets at the 3rd batch
        calls[0] += 1
        out = original(self, video)
        return out * float("nan") if calls[0] == 3 else out

    monkeypatch.setattr(PixelTarget, "forward", forward)
    overrides = ("trainer.max_steps=4", "model.optimizer.fused=true", "model.optimizer.lr=1e-2")
    run = setup(tiny_cfg(*overrides, "model.scheduler.warmup_steps=0", "resume=false"))
    watch = Watch()
    run.trainer.callbacks.append(watch)
    run.fit()
    watch.before.append(_snapshot(run.module.net, run.trainer.optimizers[0]))
    (w2, s2), (w3, s3), (w4, _) = watch.before[2:5]
    assert _equal(w2, w3) and _equal(s2, s3) and not _equal(w3, w4)
    assert torch.isnan(watch.outputs[2]["loss"])  # returned, not skipped by Lightning
    assert run.module.nonfinite.total == 1
