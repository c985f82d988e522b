"""The AVA LightningDataModule: keyframe clips on CPU workers, normalisation on the device.

Datasets come from Hydra either built (``_target_: smile.data.ava.AvaClipDataset``) or as
partials (``_partial_: true``), which ``setup`` builds: partials are needed with ``synthetic``,
whose files ``prepare_data`` writes only after the config was instantiated.

Sharding: the project's trainers set ``use_distributed_sampler: false`` (smile's samplers shard by
themselves), so every loader here uses :class:`~smile.data.sampler.ResumableSampler` with the
trainer's rank and world size: training shuffles per epoch (and reaches the dataset's
``set_epoch``), evaluation keeps file order. With several ranks the last evaluation shard is
padded with repeats of the first items, so a keyframe can be evaluated twice; the detection
module de-duplicates detections by ``(video_id, timestamp)`` before scoring.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from torch.utils.data import DataLoader

from smile.data.ava.dataset import AvaClipDataset, collate_ava
from smile.data.ava.synthetic import write_synthetic_ava
from smile.data.ava.transforms import as_size
from smile.data.datamodule import normalize_video
from smile.data.resume import ResumableSampling
from smile.video import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["AvaDataModule", "AvaDatasetFactory", "AvaEvalFiles", "SyntheticSpec"]

_MARKER = "synthetic.json"  # in a finished synthetic AVA: the arguments it was written with
SYNTHETIC_VERSION = 2  # of smile.data.ava.synthetic's output; 2: sawtooth motion through every keyframe


class AvaDatasetFactory(Protocol):
    """A dataset not built yet: a Hydra ``_partial_: true`` node of :class:`AvaClipDataset`."""

    def __call__(self) -> AvaClipDataset: ...


@dataclass(frozen=True)
class AvaEvalFiles:
    """What the frame-mAP evaluator needs of the validation split (``trainer.datamodule.eval_files``).

    Attributes:
        label_map: The pbtxt of the evaluated classes.
        groundtruth: The validation annotation CSV.
        excluded: The validation excluded-timestamps CSV, or None.
    """

    label_map: Path
    groundtruth: Path
    excluded: Path | None


@dataclass(frozen=True)
class SyntheticSpec:
    """``data.synthetic``: where and how to write a synthetic AVA (:func:`~smile.data.ava.write_synthetic_ava`)."""

    root: str
    num_videos: int
    seconds: int
    seed: int
    val_videos: int = 1

    @staticmethod
    def parse(node: Mapping[str, Any]) -> SyntheticSpec:
        """Build from a config mapping; a missing or unknown key is an error naming it."""
        given, required = set(node), {"root", "num_videos", "seconds", "seed"}
        wanted = required | {"val_videos"}
        if not required <= given <= wanted:
            raise ValueError(
                f"data.synthetic needs the keys {sorted(required)} (and optionally val_videos): missing "
                f"{sorted(required - given)}, unknown {sorted(given - wanted)}"
            )
        val = int(node["val_videos"]) if "val_videos" in node else 1
        return SyntheticSpec(str(node["root"]), int(node["num_videos"]), int(node["seconds"]), int(node["seed"]), val)


def prepare_synthetic(spec: SyntheticSpec) -> bool:
    """Write the synthetic AVA at ``spec.root`` unless it is there already; True if written now.

    Written into a temporary sibling folder that is renamed into place when complete, so a killed
    run never leaves half a dataset that a later run would trust.

    Raises:
        ValueError: ``spec.root`` exists but holds something else, or a synthetic AVA written
            with other arguments (names the folder and the fix).
    """
    root = Path(spec.root)
    wanted = asdict(spec) | {"root": None, "generator": SYNTHETIC_VERSION}  # a changed generator: not reused
    if root.exists():
        marker = root / _MARKER
        if not marker.is_file():
            raise ValueError(f"data.synthetic.root={root} exists but is not a synthetic AVA: choose an empty path")
        if json.loads(marker.read_text()) != wanted:
            raise ValueError(
                f"data.synthetic.root={root} holds a synthetic AVA written with {marker.read_text().strip()}, "
                f"not {json.dumps(wanted)}: delete the folder or choose another root"
            )
        return False
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_synthetic_ava(tmp, spec.num_videos, spec.seconds, spec.seed, spec.val_videos)
        (tmp / _MARKER).write_text(json.dumps(wanted))
        os.rename(tmp, root)
    except OSError:
        if not (root / _MARKER).is_file():  # not another process winning the race: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


class AvaDataModule(ResumableSampling, L.LightningDataModule):
    """AVA keyframe clips for the detector, in the batch contract of :func:`~smile.data.ava.collate_ava`.

    Args:
        train_dataset: The training :class:`AvaClipDataset` (``split="train"``), or its partial.
        val_dataset: The validation dataset (``split="test"``: proposals or oracle boxes), or its partial.
        test_dataset: The test dataset or partial; None = the validation dataset.
        label_map: The label-map pbtxt the evaluator scores (:attr:`eval_files`); keyword-only, required.
        batch_size: Clips per device per training step.
        eval_batch_size: Clips per device per evaluation step; None = ``batch_size``.
        num_workers: DataLoader worker processes per device.
        pin_memory: Pin host memory (only used with CUDA).
        persistent_workers: Keep workers alive across epochs (only with ``num_workers > 0``).
        mean: Per-channel normalisation mean in [0, 1] (ImageNet, as the reference).
        std: Per-channel normalisation std in [0, 1].
        seed: Seed of the training shuffle and the workers' seeds.
        synthetic: ``{root, num_videos, seconds, seed[, val_videos]}`` to write a synthetic AVA in ``prepare_data``
            (datasets must then be partials pointing into ``root``); None for real data.
        proposal_score: ``data.proposal_score``, the threshold the dataset nodes interpolate; kept
            as an attribute (for logs), not applied here.
        source: Where the dataset lives (``data.source.*``, which the dataset nodes interpolate).
            Accepted so that the config node can hold it; not kept (as in ``VideoDataModule``).
        test_size: ``data.test_size``, the evaluation frame size the dataset nodes interpolate; kept as an
            attribute, not applied here.
    """

    def __init__(
        self,
        train_dataset: AvaClipDataset | AvaDatasetFactory,
        val_dataset: AvaClipDataset | AvaDatasetFactory | None = None,
        test_dataset: AvaClipDataset | AvaDatasetFactory | None = None,
        *,
        label_map: str | Path,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        synthetic: Mapping[str, Any] | None = None,
        proposal_score: float | None = None,
        source: Mapping[str, Any] | None = None,
        test_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.proposal_score = proposal_score
        self.test_size = None if test_size is None else as_size(test_size)
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1) or num_workers < 0:
            raise ValueError(
                f"data.batch_size and data.eval_batch_size must be >= 1 and data.num_workers >= 0, "
                f"got {batch_size}, {eval_batch_size}, {num_workers}"
            )
        self.synthetic = None if synthetic is None else SyntheticSpec.parse(synthetic)
        self._sources = {"train": train_dataset, "val": val_dataset, "test": test_dataset}
        self.datasets: dict[str, AvaClipDataset] = {}
        self.label_map = Path(label_map)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.mean, self.std, self.seed = tuple(mean), tuple(std), seed
        self.train_items_per_batch = batch_size
        self._init_sampling()

    def prepare_data(self) -> None:
        """Write the synthetic AVA once (Lightning calls this on one process per node)."""
        if self.synthetic is not None:
            prepare_synthetic(self.synthetic)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets given as partials (once); check the label map exists."""
        for name, source in self._sources.items():
            if source is not None and name not in self.datasets:
                self.datasets[name] = source if isinstance(source, AvaClipDataset) else source()
        if not self.label_map.is_file():
            raise FileNotFoundError(f"AVA label map data.label_map={self.label_map} not found: set it to the pbtxt")

    def _dataset(self, name: str) -> AvaClipDataset:
        if name == "test" and self._sources["test"] is None:
            name = "val"
        if name not in self.datasets:
            raise RuntimeError(f"AvaDataModule has no {name} dataset: give data.{name}_dataset and call setup() first")
        return self.datasets[name]

    @property
    def eval_files(self) -> AvaEvalFiles | None:
        """Label map, ground truth and excluded timestamps of the evaluated split, for the frame-mAP.

        The validation dataset's files (the test dataset's when only that one is given); None
        before ``setup`` or without an evaluation dataset.
        """
        evaluated = self.datasets.get("val", self.datasets.get("test"))
        return None if evaluated is None else AvaEvalFiles(self.label_map, evaluated.annotations, evaluated.excluded)

    def _loader(self, dataset: AvaClipDataset, train: bool) -> DataLoader:
        sampler = (
            self._train_sampler_for(len(dataset), drop_last=False, on_epoch=dataset.set_epoch)
            if train
            else self._eval_sampler_for(len(dataset))
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            collate_fn=collate_ava,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            drop_last=False,
            generator=torch.Generator().manual_seed(self.seed + 7919 * self._rank_world()[0]),  # workers' seeds
        )

    def state_dict(self) -> dict[str, Any]:
        """Where the training sampler stands, so a resumed run continues the same epoch order."""
        return self.sampling_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.load_sampling_state(state_dict)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("test"), train=False)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """uint8 ``video`` ``[B, 3, T, H, W]`` -> float32 normalised, on the batch's device; the rest unchanged."""
        if batch["video"].dtype == torch.uint8:
            batch["video"] = normalize_video(batch["video"], self.mean, self.std)  # [B, 3, T, H, W]
        return batch
