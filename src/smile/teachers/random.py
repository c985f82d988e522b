"""A tiny, randomly initialised, frozen ViT-like teacher: tests and the no-weights demo.

Same interface as the real teachers (``dim``, ``patch_size``, ``frame_stride``,
``forward(video) -> [B, (T/frame_stride)*h*w, dim]``). Its weights come from a private generator
seeded with ``seed`` (the global RNG is left untouched), so every instance with the same arguments
computes the same function, on any machine, without a file.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from smile.teachers.feature import FrozenTeacher

__all__ = ["RandomTeacher"]


class RandomTeacher(FrozenTeacher):
    """Conv patch embedding + ``depth`` pre-norm transformer blocks + LayerNorm, random and frozen.

    Args:
        dim: feature width (output channels).
        patch_size: conv patch side; the output grid is ``H // patch_size x W // patch_size``.
        depth: number of transformer blocks.
        frame_stride: frames ``0, s, 2s, ...`` are encoded (the student's tubelet size).
        seed: initialisation seed.
        heads: attention heads (must divide ``dim``).
        dtype: ``None`` = fp32; ``bf16``/``fp16`` = autocast.
    """

    def __init__(
        self,
        dim: int = 32,
        patch_size: int = 16,
        depth: int = 1,
        frame_stride: int = 2,
        seed: int = 0,
        heads: int = 2,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__(dim, patch_size, frame_stride, None, dtype)
        if dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}")
        self.seed = seed
        with torch.random.fork_rng(devices=[]):  # deterministic init, global RNG unchanged
            torch.manual_seed(seed)
            self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
            self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio=2.0, qkv_bias=True) for _ in range(depth)))
            self.norm = nn.LayerNorm(dim)
        self.freeze()

    def encode_frames(self, frames: Tensor) -> Tensor:
        """Images ``[N, 3, H, W]`` -> ``[N, H/p, W/p, dim]``."""
        x = self.patch_embed(frames)  # [N, C, h, w]
        n, c, h, w = x.shape
        x = self.blocks(x.flatten(2).transpose(1, 2))  # [N, h*w, C]
        return self.norm(x).reshape(n, h, w, c)
