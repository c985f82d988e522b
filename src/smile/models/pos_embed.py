"""Fixed sinusoidal position tables (the only position encoding VideoMAE / SMILE use).

The table is computed in float64 with numpy, exactly as the reference does, and only then cast to
float32, so a model that loads an official checkpoint reproduces the reference's activations
bit for bit. It is never a parameter and never saved: callers register it as a non-persistent
buffer.
"""

from __future__ import annotations

import numpy as np
import torch
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
