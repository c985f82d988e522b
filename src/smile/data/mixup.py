"""Mixup / CutMix of video clips on the training device (timm's ``Mixup``, SPEC §7.1).

The data module applies it to training batches in ``on_after_batch_transfer``, next to the other
batch work (normalisation, SMILE's overlay, masks), so the LightningModule only sees mixed clips
and their soft targets (``batch["soft_target"]``).
"""

from __future__ import annotations

import warnings

import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target


def mix_video(mixup: Mixup, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply timm Mixup/CutMix to clips ``[B, 3, T, H, W]``; returns (mixed clips, soft targets ``[B, K]``).

    timm sizes the box from the last two dims (H, W) but cuts ``x[:, :, y0:y1, x0:x1]``, i.e.
    dims 2 and 3, which for a 5-D clip are (T, H). Viewing the clip as ``[B, 3*T, H, W]`` makes
    the cut the spatial box it was sized for, the same in every frame and channel. Mixes in place.
    """
    flat = video.reshape(video.shape[0], -1, *video.shape[-2:])  # [B, 3*T, H, W], a view
    flat, target = mixup(flat, label)
    return flat.view(video.shape), target


class ClipMixup:
    """timm ``Mixup`` for clip batches; an odd batch gets smoothed one-hot targets instead (one warning).

    Args mirror timm's ``Mixup`` (the reference's values: ``mixup_alpha`` 0.8, ``cutmix_alpha`` 1.0,
    ``prob`` 1.0, ``switch_prob`` 0.5, ``mode`` batch, ``label_smoothing`` 0.1).
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        cutmix_minmax: tuple[float, float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        label_smoothing: float = 0.1,
    ) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0 and cutmix_minmax is None:
            raise ValueError("data.mixup: every alpha is off; set data.mixup=null instead")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mixup = Mixup(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            cutmix_minmax=cutmix_minmax,
            prob=prob,
            switch_prob=switch_prob,
            mode=mode,
            label_smoothing=label_smoothing,
            num_classes=num_classes,
        )
        self._warned_odd_batch = False

    def __call__(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mixed clips ``[B, 3, T, H, W]``, soft targets ``[B, K]``); mixes in place."""
        if video.shape[0] % 2 == 0:
            return mix_video(self.mixup, video, label)
        if not self._warned_odd_batch:
            warnings.warn(
                f"odd batch of {video.shape[0]} clips: Mixup/CutMix needs even batches and is skipped "
                "for such batches (use drop_last and an even batch size)",
                stacklevel=2,
            )
            self._warned_odd_batch = True
        return video, mixup_target(label, self.num_classes, 1.0, self.label_smoothing)
