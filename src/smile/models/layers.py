"""Transformer building blocks shared by the video encoder and the MAE decoder.

Parameter names follow the official VideoMAE / SMILE checkpoints exactly (SPEC §4.3), so their
state dicts load strictly: ``patch_embed.proj``, ``attn.qkv`` + ``attn.q_bias``/``attn.v_bias``,
``attn.proj``, ``mlp.fc1``/``mlp.fc2``, ``norm1``/``norm2``. Attention runs through
``F.scaled_dot_product_attention`` so the fused kernels (flash / memory-efficient) are used
wherever the device offers them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from timm.layers import DropPath
from torch import Tensor, nn

LN_EPS = 1e-6  # every LayerNorm in the reference uses eps 1e-6


def to_2tuple(size: int | tuple[int, int]) -> tuple[int, int]:
    """Return ``(h, w)`` for an int (square) or a pair."""
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


def check_positive(**values: float) -> None:
    """Raise a ``ValueError`` naming the first non-positive value.

    Called at construction so a bad config fails before any tensor is allocated.
    """
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"{key}={value} must be positive")


def check_divisible(name: str, value: int, divisor_name: str, divisor: int) -> None:
    """Raise a ``ValueError`` when ``value`` is not a multiple of ``divisor``."""
    if value % divisor != 0:
        raise ValueError(f"{name}={value} is not divisible by {divisor_name}={divisor}")


class PatchEmbed3D(nn.Module):
    """Cut a clip into ``tubelet x patch x patch`` cubes and project each to ``embed_dim``.

    One Conv3d with kernel = stride does the cut and the projection in one op. Tokens come out
    flattened t-major (``t*h*w``), the order every mask in this project uses. With
    ``dynamic_size`` any frame size that the patches tile is accepted (AVA evaluates larger frames
    than it trains on); otherwise only ``img_size``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        num_frames: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        dynamic_size: bool = False,
    ) -> None:
        super().__init__()
        height, width = to_2tuple(img_size)
        self.dynamic_size = dynamic_size
        check_positive(
            img_size=min(height, width),
            patch_size=patch_size,
            num_frames=num_frames,
            tubelet_size=tubelet_size,
            in_chans=in_chans,
            embed_dim=embed_dim,
        )
        check_divisible("num_frames", num_frames, "tubelet_size", tubelet_size)
        check_divisible("img_size", height, "patch_size", patch_size)
        check_divisible("img_size", width, "patch_size", patch_size)
        self.img_size = (height, width)
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.embed_dim = embed_dim
        self.grid = (num_frames // tubelet_size, height // patch_size, width // patch_size)
        self.num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel, bias=True)

    def grid_of(self, video: Tensor) -> tuple[int, int, int]:
        """Token grid ``(t, h, w)`` of ``video [B, C, T, H, W]``; a size the model does not take is an error."""
        expected = (self.num_frames, *self.img_size)
        shape = tuple(video.shape[2:]) if video.ndim == 5 else None
        fits = shape == expected or (
            self.dynamic_size
            and shape is not None
            and shape[0] == self.num_frames
            and shape[1] % self.patch_size == 0
            and shape[2] % self.patch_size == 0
        )
        if not fits:
            allowed = f"(T, H, W)={expected}"
            if self.dynamic_size:
                allowed = f"T={self.num_frames}, H and W multiples of {self.patch_size}"
            raise ValueError(f"expected video [B, C, T, H, W] with {allowed}, got {tuple(video.shape)}")
        p = self.patch_size
        return (self.num_frames // self.tubelet_size, video.shape[3] // p, video.shape[4] // p)

    def forward(self, video: Tensor) -> Tensor:
        """Map ``video [B, C, T, H, W]`` to tokens ``[B, N, D]`` with ``N = t*h*w``."""
        self.grid_of(video)
        x = self.proj(video)  # [B, D, t, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, N, D]


class Attention(nn.Module):
    """Multi-head self-attention with BEiT-style biases: learnable q and v bias, k bias fixed at 0.

    The fixed zero k bias is harmless (softmax is invariant to a per-query constant) and keeping the
    split ``q_bias``/``v_bias`` layout is what lets official checkpoints load without renaming.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads)
        check_divisible("dim", dim, "num_heads", num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias: nn.Parameter | None
        self.v_bias: nn.Parameter | None
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def _qkv_bias(self) -> Tensor | None:
        if self.q_bias is None or self.v_bias is None:
            return None
        # [3D]: q bias, a constant-zero k bias (no gradient), v bias
        return torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))

    def forward(self, x: Tensor) -> Tensor:
        """Attend over ``x [B, N, D]``; returns ``[B, N, D]``."""
        qkv = F.linear(x, self.qkv.weight, self._qkv_bias())  # [B, N, 3D]
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        x = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, d], scale d^-0.5
        x = rearrange(x, "b h n d -> b n (h d)")  # [B, N, D]
        return self.proj(x)


class Mlp(nn.Module):
    """Two-layer feed-forward network with exact (erf) GELU, as in the reference."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, N, D] -> [B, N, D]``."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + DP(attn(LN(x)))``, then ``x + DP(mlp(LN(x)))``.

    There is no layer scale: every reference entry point uses ``init_values=0``, so official
    checkpoints carry no ``gamma`` keys.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """``[B, N, D] -> [B, N, D]``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def drop_path_rates(drop_path: float, depth: int) -> list[float]:
    """Stochastic-depth rate per block, rising linearly from 0 to ``drop_path`` (reference rule)."""
    if not 0.0 <= drop_path < 1.0:
        raise ValueError(f"drop_path={drop_path} must be in [0, 1)")
    return [float(r) for r in torch.linspace(0.0, drop_path, depth, device="cpu")]


def run_blocks(blocks: nn.ModuleList, x: Tensor, checkpoint: bool) -> Tensor:
    """Apply ``blocks`` in order, recomputing each block's activations in backward if asked.

    Non-reentrant checkpointing preserves the RNG state, so DropPath draws the same masks in the
    recomputation and gradients equal the plain forward's.
    """
    for blk in blocks:
        if checkpoint:
            x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False)
        else:
            x = blk(x)
    return x
