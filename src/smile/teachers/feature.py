"""Frozen feature teachers: the shared frame/grid plumbing and the feature target.

Every teacher (CLIP, DINO, the random test teacher) maps a clip ``[B, 3, T, H, W]`` to
``[B, (T/frame_stride)*h*w, C]`` tokens in the student's t-major order: it encodes frames
``0, s, 2s, ...`` (``s = frame_stride`` = the student's tubelet size, i.e. the first frame of
every tubelet, SPEC §5.1) one image at a time and, if its own token grid differs from the
student's ``h x w``, resamples the token map bilinearly (ViT-L/14: 16x16 -> 14x14 at 224 px).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from smile.teachers.targets import FEATURE_NORMS, normalize_features

__all__ = [
    "FrozenTeacher",
    "FeatureTarget",
    "check_complete_state_dict",
    "missing_weights_error",
    "resample_token_grid",
    "resolve_dtype",
    "select_frames",
]

_DTYPE_NAMES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "16": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``None``/``"fp32"`` -> None (plain fp32); ``"bf16"``/``"fp16"`` (or torch dtypes) -> that dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPE_NAMES:
            raise ValueError(f"unknown teacher dtype {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}")
        dtype = _DTYPE_NAMES[dtype.lower()]
    return None if dtype == torch.float32 else dtype


def select_frames(video: Tensor, frame_stride: int) -> Tensor:
    """Frames ``0, s, 2s, ...`` of ``[B, C, T, H, W]`` as images ``[B*T/s, C, H, W]`` (t fastest-but-one)."""
    if video.ndim != 5:
        raise ValueError(f"video must be [B, C, T, H, W], got shape {tuple(video.shape)}")
    if video.shape[2] % frame_stride:
        raise ValueError(f"T={video.shape[2]} frames is not divisible by frame_stride={frame_stride}")
    return rearrange(video[:, :, ::frame_stride], "b c t h w -> (b t) c h w")


def resample_token_grid(tokens: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resample a token map ``[N, h, w, C]`` to ``[N, *size, C]`` (no-op if equal).

    ``align_corners=False``: each output token samples the teacher map at its own patch centre,
    which keeps the field of view of a token aligned with the student's patch.
    """
    if tuple(tokens.shape[1:3]) == tuple(size):
        return tokens
    x = rearrange(tokens, "n h w c -> n c h w")
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return rearrange(x, "n c h w -> n h w c")


def check_complete_state_dict(
    model: nn.Module,
    sd: Mapping[str, Tensor],
    path: str | Path,
    what: str,
    notes: Mapping[str, str] | None = None,
) -> None:
    """Raise ValueError unless ``sd`` has exactly the model's keys with the model's shapes.

    The reference loaded teachers with ``strict=False`` and printed the message (SPEC §10.18); here
    a partial or mismatched file is refused, naming the file and every offending key. ``notes``
    maps a key prefix to an explanation added when a key with that prefix is missing.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if sd[k].shape != own[k].shape
    ]
    if not (missing or unexpected or mismatched):
        return

    def show(items: list[str]) -> str:
        return "[" + ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "") + "]"

    lines = [f"{path}: not a complete {what} (refusing a partial load)."]
    if missing:
        lines.append(f"missing keys {show(missing)}")
    if unexpected:
        lines.append(f"unexpected keys {show(unexpected)}")
    if mismatched:
        lines.append(f"shape mismatches {show(mismatched)}")
    lines += [note for prefix, note in (notes or {}).items() if any(k.startswith(prefix) for k in missing)]
    raise ValueError(" ".join(lines))


def missing_weights_error(path: str | Path | None, arch: str, help_text: str) -> FileNotFoundError:
    """FileNotFoundError naming the path (or its absence) and where to get the weights."""
    head = "no teacher weights path given" if path is None else f"teacher weights not found: {path}"
    return FileNotFoundError(f"{head} ({arch}). {help_text}")


class FrozenTeacher(nn.Module):
    """Base of the frozen teachers: frame selection, grid matching, precision, frozen eval mode.

    Subclasses implement :meth:`encode_frames` and call :meth:`freeze` at the end of ``__init__``.

    Args:
        dim: output channels ``C``.
        patch_size: pixel stride of the *output* token grid, i.e. the student's patch size; the
            default student grid is ``H // patch_size x W // patch_size``.
        frame_stride: keep every ``frame_stride``-th frame (the student's tubelet size).
        student_grid: fixed output grid ``(h, w)`` overriding the default.
        dtype: ``None`` runs in fp32 with any outer autocast disabled (the reference); ``bf16`` /
            ``fp16`` run the tower under autocast of that dtype (outputs are float32 either way).
    """

    def __init__(
        self,
        dim: int,
        patch_size: int = 16,
        frame_stride: int = 2,
        student_grid: tuple[int, int] | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__()
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.dim = int(dim)
        self.patch_size = int(patch_size)
        self.frame_stride = int(frame_stride)
        self.student_grid = None if student_grid is None else (int(student_grid[0]), int(student_grid[1]))
        self.dtype = resolve_dtype(dtype)

    def freeze(self) -> FrozenTeacher:
        """No gradients, eval mode for good (see :meth:`train`)."""
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """A teacher never trains: dropout/drop-path stay off whatever a parent asks."""
        return super().train(False)

    def encode_frames(self, frames: Tensor) -> Tensor:
        """Images ``[N, 3, H, W]`` -> token maps ``[N, h', w', C]`` on the teacher's own grid."""
        raise NotImplementedError

    def output_grid(self, height: int, width: int) -> tuple[int, int]:
        """The student's token grid for frames of ``height x width`` pixels."""
        return self.student_grid or (height // self.patch_size, width // self.patch_size)

    def _precision(self, device: torch.device):
        if self.dtype is None:  # exact fp32 even inside Lightning's mixed-precision autocast
            return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    @torch.no_grad()
    def forward(self, video: Tensor) -> Tensor:
        """``[B, 3, T, H, W]`` clip -> float32 ``[B, (T/frame_stride)*h*w, C]``, t-major tokens."""
        b = video.shape[0]
        frames = select_frames(video, self.frame_stride).float()  # [B*T', 3, H, W]
        with self._precision(video.device):
            tokens = self.encode_frames(frames)  # [B*T', h', w', C]
            tokens = resample_token_grid(tokens, self.output_grid(*video.shape[-2:]))  # [B*T', h, w, C]
        return rearrange(tokens.float(), "(b t) h w c -> b (t h w) c", b=b)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, patch_size={self.patch_size}, frame_stride={self.frame_stride}, "
            f"student_grid={self.student_grid}, dtype={self.dtype}"
        )


class FeatureTarget(nn.Module):
    """Regression target from a frozen teacher: ``normalize_features(teacher(video), norm)``.

    A plain module: the teacher's weights *do* appear in ``state_dict()``; the pretraining
    LightningModule strips every ``target.*`` key from its checkpoints (and restores them from the
    live teacher on load), so checkpoints stay teacher-free without tricks here.

    Args:
        teacher: a frozen teacher (``dim``, ``forward(video) -> [B, N, C]``).
        norm: one of ``clip_channel_standardize`` (reference), ``token_layernorm``, ``none``.
        eps: numerical floor of the normalisation.
    """

    def __init__(self, teacher: nn.Module, norm: str = "clip_channel_standardize", eps: float = 1e-6) -> None:
        super().__init__()
        if norm not in FEATURE_NORMS:
            raise ValueError(f"unknown feature normalisation {norm!r}; expected one of {FEATURE_NORMS}")
        self.teacher = teacher.requires_grad_(False).eval()
        self.norm = norm
        self.eps = eps
        dim = getattr(teacher, "dim", None)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"the teacher needs an int `dim` (its output width), got {dim!r}")
        self.dim = dim
        self.patch_size = getattr(teacher, "patch_size", None)
        self.frame_stride = getattr(teacher, "frame_stride", None)

    def train(self, mode: bool = True) -> FeatureTarget:
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def forward(self, video: Tensor) -> Tensor:
        """``[B, 3, T, H, W]`` clip -> float32 normalised targets ``[B, N, dim]``."""
        return normalize_features(self.teacher(video), self.norm, self.eps)

    def extra_repr(self) -> str:
        return f"norm={self.norm}, dim={self.dim}"
