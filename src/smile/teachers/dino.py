"""Frozen DINO (v1) ViT as a feature teacher (SPEC §5.3), weights from a local file only.

The reference fetched the weights with ``torch.hub`` (network) and loaded them non-strictly into
timm's ``vit_small|base_patch16_224``. Here the same timm architecture is built with
``pretrained=False`` and the official backbone state dict (``cls_token``, ``pos_embed``,
``patch_embed.proj.*``, ``blocks.*``, ``norm.*``) is loaded strictly. Tokens are
``forward_features(x)[:, 1:]``: after the final norm, CLS dropped. DINO was trained on
ImageNet-normalised images, so the student's clip is fed as-is.

Frames of another size than the model's ``img_size`` work through timm's ``dynamic_img_size``:
the positional embedding is resampled (bicubic) to the frame's grid at every call; at the native
size it is used unchanged, so results equal the plain fixed-size model.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor

from smile.teachers.clip import full_fp32
from smile.teachers.feature import FrozenTeacher, check_complete_state_dict, missing_weights_error

__all__ = ["DINO_FILES", "DINOTeacher", "load_dino_state_dict"]

DINO_FILES = {
    "vit_small_patch16_224": "dino_deitsmall16_pretrain.pth",
    "vit_base_patch16_224": "dino_vitbase16_pretrain.pth",
}
_WEIGHTS_HELP = (
    "Get the DINO backbone weights ({file}; ViT-S/16: dino_deitsmall16_pretrain.pth, ViT-B/16: "
    "dino_vitbase16_pretrain.pth) from the facebookresearch/dino release "
    "(https://github.com/facebookresearch/dino, 'Pretrained models'), and set "
    "`model.teacher.path=/path/to/{file}`."
)


def load_dino_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Backbone state dict from a DINO file: the released ``*_pretrain.pth`` (a plain state dict),
    or a re-saved training checkpoint (``{"teacher": ...}`` with ``module.``/``backbone.`` prefixes;
    its projection ``head.*`` is dropped)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: not a plain tensor file (a full DINO training checkpoint holds pickled args); "
            "save its ['teacher'] state dict with torch.save and load that instead"
        ) from err
    for wrapper in ("teacher", "state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(obj).__name__}")
    sd = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in obj.items() if isinstance(v, Tensor)}
    return {k: v for k, v in sd.items() if not k.startswith("head.")}


class DINOTeacher(FrozenTeacher):
    """Frozen timm ViT emitting its final-norm patch tokens on the student's grid.

    Args:
        model: a timm ``VisionTransformer`` (``num_classes=0``, ideally ``dynamic_img_size=True``).
        frame_stride: frames ``0, s, 2s, ...`` are encoded (the student's tubelet size).
        student_grid: output grid ``(h, w)``; default ``H // student_patch_size x W // ...``;
            the model's own grid is bilinearly resampled to it when they differ.
        student_patch_size: pixel stride of the output grid (``self.patch_size``).
        dtype: ``None`` / ``fp32`` = full fp32, TF32 off during the forward (see
            :func:`~smile.teachers.clip.full_fp32`); ``bf16``/``fp16`` = autocast on the model.
    """

    def __init__(
        self,
        model: VisionTransformer,
        frame_stride: int = 2,
        student_grid: tuple[int, int] | None = None,
        student_patch_size: int = 16,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__(model.embed_dim, student_patch_size, frame_stride, student_grid, dtype)
        self.model = model
        self.tower_patch_size = int(model.patch_embed.patch_size[0])
        self.freeze()

    @classmethod
    def from_file(
        cls,
        path: str | Path | None,
        arch: str = "vit_small_patch16_224",
        frame_stride: int = 2,
        student_grid: tuple[int, int] | None = None,
        student_patch_size: int = 16,
        dtype: torch.dtype | str | None = None,
        **model_kwargs: Any,
    ) -> DINOTeacher:
        """Build timm ``arch`` (``pretrained=False``, ``num_classes=0``, ``dynamic_img_size=True``,
        plus ``model_kwargs`` such as ``img_size``/``depth`` for tiny test models) and load ``path``
        strictly.

        Raises:
            FileNotFoundError: ``path`` is None or does not exist (the message says where to get it).
            ValueError: the file lacks backbone weights, has extra ones, or shapes differ.
        """
        if path is None or not Path(path).is_file():
            file = DINO_FILES.get(arch, "the DINO checkpoint")
            raise missing_weights_error(path, f"DINO {arch}", _WEIGHTS_HELP.format(file=file))
        model_kwargs.setdefault("dynamic_img_size", True)
        model = cast(VisionTransformer, timm.create_model(arch, pretrained=False, num_classes=0, **model_kwargs))
        sd = load_dino_state_dict(path)
        check_complete_state_dict(model, sd, path, f"DINO {arch} backbone")
        model.load_state_dict(sd, strict=True)
        return cls(model, frame_stride, student_grid, student_patch_size, dtype)

    @contextmanager
    def _precision(self, device: torch.device) -> Iterator[None]:
        """The base class's autocast setting, plus :func:`full_fp32` for an fp32 teacher."""
        with super()._precision(device), full_fp32() if self.dtype is None else nullcontext():
            yield

    def encode_frames(self, frames: Tensor) -> Tensor:
        """Images ``[N, 3, H, W]`` (ImageNet-normalised) -> ``[N, H/p, W/p, C]`` after the final norm."""
        h, w = frames.shape[-2] // self.tower_patch_size, frames.shape[-1] // self.tower_patch_size
        tokens = self.model.forward_features(frames)[:, self.model.num_prefix_tokens :]  # [N, h*w, C]
        return tokens.reshape(frames.shape[0], h, w, -1)
