"""Frozen CLIP image tower as the SMILE feature teacher (SPEC §5.1).

The tower is open_clip's ``VisionTransformer`` (OpenAI key names, QuickGELU, ``nn.MultiheadAttention``)
built here without its projection. Per frame the teacher computes::

    conv1 -> flatten -> [CLS; patches] + positional_embedding -> ln_pre -> transformer
          -> ln_post on ALL tokens -> drop CLS -> [h*w, width]     (no ``proj``)

This equals the ``tokens`` that open_clip itself returns with ``visual.output_tokens = True``
(``pool_type='tok'``, ``final_ln_after_pool=False``: ``_pool`` applies ``ln_post`` to the whole
sequence and then splits off CLS; LayerNorm is per token, so normalising all tokens or only the
patch tokens is the same). Two differences from open_clip's forward, both deliberate: frames of
another size than the tower's are accepted (the positional embedding is resized bicubically to the
frame's grid, CLS entry kept), and the pooled/projected embedding is never computed.

Weights come from a local file only, in any of three forms, all reduced to the same un-prefixed
visual state dict (see :func:`load_clip_visual_state_dict`) and loaded strictly. No file's code is
run: OpenAI's TorchScript archive is read without ``torch.jit.load``, the others as weights only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, QuickGELU, VisionTransformer
from torch import Tensor, nn

from smile.models.checkpoint_file import read_checkpoint
from smile.models.torchscript import is_torchscript, read_torchscript_state_dict
from smile.teachers.feature import FrozenTeacher, check_complete_state_dict, missing_weights_error
from smile.video import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "CLIP_ARCHS",
    "CLIPArch",
    "CLIPTeacher",
    "build_clip_visual",
    "load_clip_visual_state_dict",
]

INPUT_NORMS = ("imagenet", "clip")

_WEIGHTS_HELP = (
    'Get the OpenAI CLIP {arch} weights ({file}, as fetched by `clip.load("{openai}")` / open_clip '
    '`pretrained="openai"`) or, for ViT-B/16, the SMILE release\'s clip_weights/ViT-B-16.pt from '
    "https://huggingface.co/fmthoker/SMILE, and set `model.teacher.path=/path/to/{file}`."
)


@dataclass(frozen=True)
class CLIPArch:
    """Shape of a CLIP image tower (OpenAI naming: QuickGELU unless ``quick_gelu=False``).

    Note open_clip's own model names differ: its ``ViT-B-16`` uses GELU (LAION weights) and
    ``ViT-B-16-quickgelu`` is the OpenAI one. Here every name means the OpenAI tower; pass
    ``quick_gelu=False`` for GELU-trained open_clip checkpoints.
    """

    width: int
    layers: int
    heads: int
    patch_size: int
    image_size: int = 224
    mlp_ratio: float = 4.0
    quick_gelu: bool = True

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


CLIP_ARCHS: dict[str, CLIPArch] = {
    "ViT-B-16": CLIPArch(width=768, layers=12, heads=12, patch_size=16),
    "ViT-L-14": CLIPArch(width=1024, layers=24, heads=16, patch_size=14),
}
_REQUIRED_NOTES = {
    "ln_post.": "ln_post is required: without it the targets would silently skip the final LayerNorm.",
}
_OPENAI_NAMES = {"ViT-B-16": "ViT-B/16", "ViT-L-14": "ViT-L/14"}


def resolve_arch(arch: str | CLIPArch | Mapping[str, Any]) -> CLIPArch:
    """``"ViT-B-16"`` / ``"ViT-B/16"`` / ``"ViT-B-16-quickgelu"``, a :class:`CLIPArch` or its fields."""
    if isinstance(arch, CLIPArch):
        return arch
    if isinstance(arch, Mapping):
        return CLIPArch(**dict(arch))
    name = arch.replace("/", "-").removesuffix("-quickgelu")
    if name not in CLIP_ARCHS:
        raise ValueError(f"unknown CLIP arch {arch!r}; expected one of {sorted(CLIP_ARCHS)} or a CLIPArch")
    return CLIP_ARCHS[name]


def build_clip_visual(
    width: int,
    layers: int,
    heads: int,
    patch_size: int,
    image_size: int,
    mlp_ratio: float = 4.0,
    quick_gelu: bool = True,
    output_dim: int | None = None,
) -> VisionTransformer:
    """open_clip ``VisionTransformer`` with OpenAI's key names (``conv1``, ``class_embedding``, ...).

    Args:
        output_dim: keep a ``proj`` of ``[width, output_dim]`` (as in the released files); ``None``
            removes it, which is what the teacher uses (features are taken before ``proj``).
    """
    visual = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        width=width,
        layers=layers,
        heads=heads,
        mlp_ratio=mlp_ratio,
        output_dim=output_dim or width,
        act_layer=QuickGELU if quick_gelu else nn.GELU,
        norm_layer=LayerNorm,
    )
    if output_dim is None:
        visual.proj = None  # drops the parameter from the module and its state dict
    return visual


# -- weight files ------------------------------------------------------------------------------
def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Flat ``{key: tensor}`` from a TorchScript archive or a (possibly wrapped) torch.save dict.

    The OpenAI archive (form (a)) is read by :func:`~smile.models.torchscript.read_torchscript_state_dict`,
    which takes the tensors out of the zip without ``torch.jit.load`` (that would run the code the
    archive carries); everything else by :func:`~smile.models.checkpoint_file.read_checkpoint`.
    """
    if is_torchscript(path):
        return read_torchscript_state_dict(path)
    obj = read_checkpoint(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'state_dict'), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def load_clip_visual_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read any supported CLIP weight file as one un-prefixed visual-tower state dict.

    Forms: (a) the OpenAI TorchScript archive (``visual.*`` keys plus the text tower), (b) an
    open_clip checkpoint (``{"state_dict": ...}`` or raw, ``visual.*`` keys, maybe ``module.``),
    (c) the SMILE/UMT extract with un-prefixed keys and maybe a 5-D inflated ``conv1``. Non-visual
    keys of (a)/(b) are ignored; ``proj`` is dropped (unused); ``conv1`` ``(C,3,1,p,p)`` is squeezed.
    """
    path = Path(path)
    sd = _read_state_dict(path)
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if any(k.startswith("visual.") for k in sd):
        sd = {k.removeprefix("visual."): v for k, v in sd.items() if k.startswith("visual.")}
    sd.pop("proj", None)
    conv = sd.get("conv1.weight")
    if conv is not None and conv.ndim == 5 and conv.shape[2] == 1:
        sd["conv1.weight"] = conv.squeeze(2)  # the reference's Conv3d(1, p, p) inflation
    return sd


# -- the teacher --------------------------------------------------------------------------------
@contextmanager
def full_fp32() -> Iterator[None]:
    """An fp32 teacher without TF32 (the reference: true fp32): matmuls ``highest``, exact cuDNN convs.

    ``train.py`` sets matmul ``high``, cuDNN allows TF32 convs by default; legacy API (torch refuses a mix).
    """
    matmul, conv = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = conv


class CLIPTeacher(FrozenTeacher):
    """Frozen CLIP image tower emitting patch tokens on the student's grid.

    Args:
        visual: an open_clip ``VisionTransformer`` (see :func:`build_clip_visual`), loaded.
        input_norm: ``imagenet`` feeds the student's ImageNet-normalised clip as-is (the reference,
            SPEC §5.1/§10.6); ``clip`` undoes ImageNet normalisation and applies CLIP's mean/std.
        frame_stride: frames ``0, s, 2s, ...`` are encoded (the student's tubelet size).
        student_grid: output grid ``(h, w)``; default ``H // student_patch_size x W // ...``. The
            tower's own grid (``H // tower patch``) is bilinearly resampled to it when they differ,
            e.g. ViT-L/14 at 224 px: 16x16 -> 14x14 (the reference's dead patch-14 branch did the same).
        student_patch_size: pixel stride of the output grid (``self.patch_size``).
        dtype: ``None``/``fp32`` = fp32 without TF32 (reference, :func:`full_fp32`); ``bf16``/``fp16`` = autocast.
    """

    in_mean: Tensor
    in_std: Tensor
    clip_mean: Tensor
    clip_std: Tensor

    def __init__(
        self,
        visual: VisionTransformer,
        input_norm: str = "imagenet",
        frame_stride: int = 2,
        student_grid: tuple[int, int] | None = None,
        student_patch_size: int = 16,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__(visual.transformer.width, student_patch_size, frame_stride, student_grid, dtype)
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        visual.proj = None  # features are taken before the projection
        self.visual = visual
        self.input_norm = input_norm
        self.tower_patch_size = int(visual.conv1.kernel_size[0])
        for name, values in (
            ("in_mean", IMAGENET_MEAN),
            ("in_std", IMAGENET_STD),
            ("clip_mean", CLIP_MEAN),
            ("clip_std", CLIP_STD),
        ):
            self.register_buffer(name, torch.tensor(values).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    @classmethod
    def from_file(
        cls,
        path: str | Path | None,
        arch: str | CLIPArch | Mapping[str, Any] = "ViT-B-16",
        input_norm: str = "imagenet",
        frame_stride: int = 2,
        student_grid: tuple[int, int] | None = None,
        quick_gelu: bool | None = None,
        **kwargs: Any,
    ) -> CLIPTeacher:
        """Build ``arch`` and load every tower weight from ``path`` (forms (a)-(c)), strictly.

        Raises:
            FileNotFoundError: ``path`` is None or does not exist (the message says where to get it).
            ValueError: the file lacks tower weights (e.g. ``ln_post``), has extra ones, or shapes differ.
        """
        spec = resolve_arch(arch)
        if quick_gelu is not None:
            spec = replace(spec, quick_gelu=quick_gelu)
        name = arch if isinstance(arch, str) else str(spec)
        if path is None or not Path(path).is_file():
            key = name.replace("/", "-").removesuffix("-quickgelu") if isinstance(arch, str) else "ViT-B-16"
            help_text = _WEIGHTS_HELP.format(arch=key, file=f"{key}.pt", openai=_OPENAI_NAMES.get(key, key))
            raise missing_weights_error(path, name, help_text)
        visual = build_clip_visual(
            spec.width, spec.layers, spec.heads, spec.patch_size, spec.image_size, spec.mlp_ratio, spec.quick_gelu
        )
        sd = load_clip_visual_state_dict(path)
        check_complete_state_dict(visual, sd, path, f"CLIP {name} visual tower", notes=_REQUIRED_NOTES)
        visual.load_state_dict(sd, strict=True)
        return cls(visual, input_norm=input_norm, frame_stride=frame_stride, student_grid=student_grid, **kwargs)

    @contextmanager
    def _precision(self, device: torch.device) -> Iterator[None]:  # + full_fp32 for an fp32 teacher
        with super()._precision(device), full_fp32() if self.dtype is None else nullcontext():
            yield

    def _positional_embedding(self, grid: tuple[int, int]) -> Tensor:
        """``[1 + h*w, C]``: the learned table, bicubically resized when the frame grid differs."""
        pos = self.visual.positional_embedding  # [1 + H0*W0, C]
        native = tuple(self.visual.grid_size)
        if tuple(grid) == native:
            return pos
        patch = pos[1:].reshape(1, *native, -1).permute(0, 3, 1, 2)  # [1, C, H0, W0]
        patch = F.interpolate(patch, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1])])

    def encode_frames(self, frames: Tensor) -> Tensor:
        """Images ``[N, 3, H, W]`` (ImageNet-normalised) -> ``[N, H/p, W/p, width]`` after ``ln_post``."""
        if self.input_norm == "clip":
            frames = (frames * self.in_std + self.in_mean - self.clip_mean) / self.clip_std
        v = self.visual
        x = v.conv1(frames)  # [N, C, h, w]
        n, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # [N, h*w, C]
        cls = v.class_embedding.to(x.dtype).view(1, 1, c).expand(n, 1, c)
        x = torch.cat([cls, x], dim=1) + self._positional_embedding((h, w)).to(x.dtype)  # [N, 1+h*w, C]
        x = v.ln_pre(x)
        x = v.transformer(x)
        x = v.ln_post(x)  # every token, as open_clip's output_tokens path
        return x[:, 1:].reshape(n, h, w, c)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, input_norm={self.input_norm}, tower_patch_size={self.tower_patch_size}"
