"""Write into every checkpoint what the model was trained on (clip geometry, normalisation, encoder, classes).

``eval.py``, ``smile-vis``, ``smile-convert`` and ``model.init_from`` read the record back with
:func:`smile.provenance.read_provenance` and use it instead of whatever geometry their own config
happens to have (the sinusoid position table would adapt silently and give a wrong number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L

from smile.data.datamodule import VideoDataModule
from smile.lit import ClassifierLitModule
from smile.provenance import GEOMETRY_KEYS, PROVENANCE_KEY, plain

__all__ = ["CheckpointProvenance"]


class CheckpointProvenance(L.Callback):
    """Adds ``checkpoint["smile"]`` (see :mod:`smile.provenance`) to every checkpoint Lightning saves.

    Args:
        video: the run's ``video`` node (``${video}``): its geometry keys are recorded.
        encoder: ``{"name": ..., "overrides": {...}}`` of ``model.encoder``.

    The normalisation (``mean``/``std``) and, for classifiers, the class names are taken from the
    trainer's data module at save time: what the clips were really normalised with and labelled by
    (None when the run was fed bare dataloaders).
    """

    def __init__(self, video: Mapping[str, Any], encoder: Mapping[str, Any]) -> None:
        video = plain(video)
        self.video = {k: video[k] for k in GEOMETRY_KEYS}
        encoder = plain(encoder)
        self.encoder = {"name": encoder["name"], "overrides": dict(encoder["overrides"] or {})}

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The provenance record of this run (plain containers only)."""
        data = getattr(trainer, "datamodule", None)  # set by fit(datamodule=...); None with bare dataloaders
        names, normalization = None, None
        if isinstance(data, VideoDataModule):
            names = data.class_names if isinstance(pl_module, ClassifierLitModule) else None
            normalization = {"mean": [float(v) for v in data.mean], "std": [float(v) for v in data.std]}
        return {
            "video": dict(self.video),
            "normalization": normalization,
            "encoder": {"name": self.encoder["name"], "overrides": dict(self.encoder["overrides"])},
            "class_names": [str(n) for n in names] if names is not None else None,
        }

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[PROVENANCE_KEY] = self.record(trainer, pl_module)
