"""End-of-training linear probe: the pretrained encoder against itself at initialisation.

The demo's proof that pretraining taught something: after ``fit`` the encoder's mean-pooled tokens
of labelled clips train a linear classifier (:func:`smile.lit.probe.linear_probe`) that is scored on
held-out clips, and the same is done with the encoder's weights from before the first step. Both
accuracies are printed side by side, logged (``probe/pretrained_acc1``, ``probe/random_acc1``) and
written to ``<output_dir>/probe.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from smile.data.datamodule import normalize_video
from smile.lit.probe import extract_features, linear_probe
from smile.video import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


class LinearProbeReport(L.Callback):
    """Linear probe of the pretraining encoder at the end of training, against its initial weights.

    The initial encoder is captured at the first training step (before any update) and kept in the
    callback's checkpoint state, so a resumed run compares against the same initialisation.

    Args:
        train_dataset: Labelled clips that train the probe (items with uint8 ``video``, ``label``).
        val_dataset: Held-out labelled clips that score it.
        num_classes: Classes of the labels.
        epochs: Probe epochs over the cached features.
        lr: Probe AdamW learning rate (features pass a BatchNorm first, MAE's recipe).
        batch_size: Clips per feature-extraction batch.
        output_dir: Where ``probe.json`` goes (None: not written).
        seed: Seed of the probe's initialisation and shuffling.
    """

    def __init__(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset,
        num_classes: int,
        epochs: int = 100,
        lr: float = 1e-2,
        batch_size: int = 64,
        output_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.num_classes, self.epochs, self.lr = int(num_classes), int(epochs), float(lr)
        self.batch_size, self.output_dir, self.seed = int(batch_size), output_dir, int(seed)
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.result: dict[str, Any] | None = None

    # -- capture the initialisation ---------------------------------------------------------------
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if self.initial_state is None and trainer.global_step == 0:
            self.initial_state = {k: v.detach().cpu().clone() for k, v in _encoder(pl_module).state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"initial_state": self.initial_state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial_state = state_dict.get("initial_state")

    # -- the probe -----------------------------------------------------------------------------------
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self.initial_state is None:
            log.warning("linear probe skipped: the initial encoder was not captured (run resumed from an old file?)")
            return
        trained = _encoder(pl_module)
        initial = copy.deepcopy(trained)
        initial.load_state_dict(self.initial_state)
        self.result = self.compare({"pretrained": trained, "random": initial}, pl_module.device)
        print(self.format(self.result), flush=True)
        for lg in trainer.loggers:
            lg.log_metrics({f"probe/{k}_acc1": v["test_acc1"] for k, v in self.result["encoders"].items()})
        if self.output_dir:
            _write_json(Path(self.output_dir) / "probe.json", self.result)

    def compare(self, encoders: dict[str, nn.Module], device: torch.device | str = "cpu") -> dict[str, Any]:
        """Probe accuracy of each encoder on the same clips: ``{"encoders": {name: metrics}, ...}``."""
        out: dict[str, Any] = {
            "num_classes": self.num_classes,
            "chance_acc1": 1.0 / self.num_classes,
            "train_clips": len(cast(Sized, self.train_dataset)),  # map-style datasets have a length
            "val_clips": len(cast(Sized, self.val_dataset)),
            "encoders": {},
        }
        train_clips, val_clips = self._clips(self.train_dataset), self._clips(self.val_dataset)  # rendered once
        with torch.random.fork_rng(devices=[]):  # the probe must not move the training RNG streams
            for name, enc in encoders.items():
                train = extract_features(enc, self._normalised(train_clips), device)
                val = extract_features(enc, self._normalised(val_clips), device)
                metrics = linear_probe(train, val, self.num_classes, self.epochs, self.lr, seed=self.seed)
                out["encoders"][name] = metrics
        return out

    def _clips(self, dataset: Dataset) -> list[dict[str, torch.Tensor]]:
        """The dataset's uint8 clips and labels in batches, decoded once for every encoder compared."""
        return [
            {"video": b["video"], "label": b["label"]}
            for b in DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        ]

    @staticmethod
    def _normalised(batches: list[dict[str, torch.Tensor]]):
        for batch in batches:
            yield {"video": normalize_video(batch["video"], IMAGENET_MEAN, IMAGENET_STD), "label": batch["label"]}

    @staticmethod
    def format(result: dict[str, Any]) -> str:
        """The side-by-side table printed at the end of the demo."""
        enc = result["encoders"]
        lines = [
            "",
            f"Linear probe on held-out clips ({result['val_clips']} clips, {result['num_classes']} motion classes, "
            f"chance {100 * result['chance_acc1']:.1f} %):",
            f"  {'encoder':<22}{'train acc':>10}{'held-out acc':>14}",
        ]
        for name, label in (("pretrained", "pretrained (this run)"), ("random", "random initialisation")):
            if name in enc:
                train, held_out = 100 * enc[name]["train_acc1"], 100 * enc[name]["test_acc1"]
                lines.append(f"  {label:<22}{train:>9.1f}%{held_out:>13.1f}%")
        return "\n".join(lines)


def _encoder(pl_module: L.LightningModule) -> nn.Module:
    """The encoder of a pretraining module (``net.encoder``) or a classifier (``net``)."""
    net = cast(nn.Module, pl_module.net)  # a registered submodule
    return getattr(getattr(net, "_orig_mod", net), "encoder", net)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
