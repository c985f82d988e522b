"""Fixed sinusoidal position tables (the only position encoding VideoMAE / SMILE use).

The table is computed in float64 with numpy, exactly as the reference does, and only then cast to
float32, so a model that loads an official checkpoint reproduces the reference's activations
bit for bit. It is never a parameter and never saved: callers register it as a non-persistent
buffer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def sinusoid_table(n_position: int, dim: int) -> Tensor:
    """Build the interleaved sine/cosine position table.

    ``angle[pos, j] = pos / 10000 ** (2 * (j // 2) / dim)``; even channels take ``sin``, odd
    channels ``cos`` (interleaved, not concatenated halves, so the layout matches the reference).

    Args:
        n_position: Number of positions (tokens).
        dim: Channel width.

    Returns:
        float32 tensor ``[1, n_position, dim]`` on the CPU.
    """
    if n_position <= 0 or dim <= 0:
        raise ValueError(f"n_position={n_position} and dim={dim} must be positive")
    pos = np.arange(n_position, dtype=np.float64)[:, None]  # [n, 1]
    j = np.arange(dim)  # [dim]
    angle = pos / np.power(10000, 2 * (j // 2) / dim)  # [n, dim], float64
    table = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))  # [n, dim]
    return torch.from_numpy(table).to(torch.float32).unsqueeze(0)  # [1, n, dim]


def interpolated_table(grid: tuple[int, int, int], table_grid: tuple[int, int, int], dim: int) -> Tensor:
    """The sinusoid table of ``table_grid``, resized per time slot to ``grid``'s spatial size.

    VideoMAE-Action-Detection runs its AVA encoder on frames larger than the 224 px of pretraining
    and keeps the 8 x 14 x 14 table of pretraining, bicubically interpolated (``align_corners=False``,
    float32) in each time slot to the frame's token grid, so position ``(t, i, j)`` means what it meant
    in pretraining. A table computed for the new grid instead would renumber every row.

    Args:
        grid: The clip's token grid ``(t, h, w)``.
        table_grid: The grid the table is computed for ``(t, h0, w0)``; same ``t``.
        dim: Channel width.

    Returns:
        float32 ``[1, t * h * w, dim]``, t-major like the tokens.
    """
    t, h, w = grid
    t0, h0, w0 = table_grid
    if t != t0:
        raise ValueError(f"the table's grid {table_grid} and the clip's {grid} differ in time slots")
    table = sinusoid_table(t0 * h0 * w0, dim).reshape(t0, h0, w0, dim).permute(0, 3, 1, 2)  # [t, D, h0, w0]
    if (h, w) != (h0, w0):
        table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)  # [t, D, h, w]
    return table.permute(0, 2, 3, 1).reshape(1, t * h * w, dim)  # [1, N, D]
