"""Where a sprite lands: placement matrices, the frame regions it can touch, and sprite prefiltering.

Geometry (shared with :mod:`smile.motion.composite`): pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``
in continuous image coordinates and a box ``(x1, y1, x2, y2)`` covers ``[x1, x2) x [y1, y2)``. A
positive angle rotates clockwise on screen (image y points down), like ``imutils.rotate_bound``.
Everything here is pure tensor maths on whatever device holds its inputs; nothing is pasted yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "boxes_in_frame",
    "mip_levels",
    "placement_theta",
    "prefilter",
    "premultiply",
    "region_grid",
    "regions",
]

_MIN_SIDE = 1e-3  # px; degenerate boxes shrink the sprite to (almost) nothing instead of dividing by 0


def placement_theta(boxes: Tensor, angles: Tensor, frame_size: Sequence[int]) -> Tensor:
    """``affine_grid`` matrices mapping frame coordinates to sprite coordinates.

    Forward placement: sprite point ``u`` in ``[-w/2, w/2] x [-h/2, h/2]`` goes to
    ``c + R(angle) u`` with ``c`` the box centre and ``R`` a clockwise-on-screen rotation. The
    returned matrix is its inverse in ``align_corners=False`` normalised coordinates.

    Args:
        boxes: ``[..., 4]`` ``(x1, y1, x2, y2)`` pixels.
        angles: ``[...]`` degrees, positive = clockwise.
        frame_size: ``(H, W)``.

    Returns:
        float32 ``[..., 2, 3]``.
    """
    h_frame, w_frame = float(frame_size[0]), float(frame_size[1])
    boxes, angles = boxes.float(), angles.float()
    x1, y1, x2, y2 = boxes.unbind(-1)
    w = (x2 - x1).clamp_min(_MIN_SIDE)
    h = (y2 - y1).clamp_min(_MIN_SIDE)
    dx = w_frame / 2 - (x1 + x2) / 2  # frame centre minus box centre, px
    dy = h_frame / 2 - (y1 + y2) / 2
    rad = torch.deg2rad(angles)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # sprite_norm = D^-1 R^T (P frame_norm + q - c), with P = q = (W/2, H/2) and D = (w/2, h/2)
    row_x = torch.stack([cos * w_frame / w, sin * h_frame / w, (cos * dx + sin * dy) * 2 / w], dim=-1)
    row_y = torch.stack([-sin * w_frame / h, cos * h_frame / h, (-sin * dx + cos * dy) * 2 / h], dim=-1)
    return torch.stack([row_x, row_y], dim=-2)  # [..., 2, 3]


def boxes_in_frame(boxes: Tensor, frame_size: Sequence[int]) -> Tensor:
    """Bool ``[...]``: the (pre-rotation) box overlaps the ``(H, W)`` frame; False for ``NO_OBJECT``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return (x2 > 0) & (y2 > 0) & (x1 < frame_size[1]) & (y1 < frame_size[0]) & (x2 > x1) & (y2 > y1)


def premultiply(sprites: Tensor) -> Tensor:
    """RGBA -> ``(rgb * a, a)``: colour interpolates without transparent texels tinting the edges."""
    return torch.cat([sprites[..., :3, :, :] * sprites[..., 3:4, :, :], sprites[..., 3:4, :, :]], dim=-3)


def mip_levels(boxes: Tensor, size: int) -> list[int]:
    """Per object, the mipmap level whose side ``size / 2**l`` is the smallest still >= the
    object's largest box side over the clip (level 0 = the sprite as is), as a Python list.

    Computed from the boxes where they live: CPU boxes cost nothing; device boxes one small sync.
    """
    wh = (boxes[..., 2:] - boxes[..., :2]).float().clamp_min(1.0)  # [B, K, T, 2]
    side = wh.amax(dim=(-1, -2)).reshape(-1)  # [B*K]
    max_level = max(0, int(math.log2(size / 4)))  # never below 4 texels
    return torch.floor(torch.log2(size / side)).clamp(0, max_level).int().tolist()


def prefilter(sprites: Tensor, levels: list[int]) -> Tensor:
    """Low-pass each sprite to its mipmap level (antialiased downsample to ``S / 2**l``, then
    bilinear back up to ``S``), so a bilinear warp to a small box does not alias.

    Args:
        sprites: float ``[N, 4, S, S]`` premultiplied.
        levels: N levels from :func:`mip_levels`.
    """
    size = sprites.shape[-1]
    out = sprites
    for lvl in sorted(set(levels) - {0}):
        idx = torch.tensor([i for i, v in enumerate(levels) if v == lvl], device=sprites.device)
        small = F.interpolate(sprites[idx], size=size >> lvl, mode="bilinear", antialias=True, align_corners=False)
        if out is sprites:
            out = sprites.clone()
        out[idx] = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    return out


def regions(boxes: Tensor, angles: Tensor, frame_size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Frame pixels each rotated box can touch: top-left ``[..., 2]`` (y0, x0) and size ``[..., 2]``.

    The axis-aligned bound of the rotated box, one pixel of margin for bilinear taps, clipped to
    the frame. Empty regions (objects off-screen) get size 0.
    """
    h, w = int(frame_size[0]), int(frame_size[1])
    x1, y1, x2, y2 = boxes.unbind(-1)
    rad = torch.deg2rad(angles)
    half_w = 0.5 * ((x2 - x1).abs() * rad.cos().abs() + (y2 - y1).abs() * rad.sin().abs())
    half_h = 0.5 * ((x2 - x1).abs() * rad.sin().abs() + (y2 - y1).abs() * rad.cos().abs())
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    top = (cy - half_h - 1).floor().clamp(0, h)
    left = (cx - half_w - 1).floor().clamp(0, w)
    bottom = (cy + half_h + 1).ceil().clamp(0, h)
    right = (cx + half_w + 1).ceil().clamp(0, w)
    origin = torch.stack([top, left], -1)
    return origin, torch.stack([bottom - top, right - left], -1).clamp_min(0)


def region_grid(theta: Tensor, origin: Tensor, canvas: tuple[int, int], frame_size: Sequence[int]) -> Tensor:
    """Sampling grid ``[..., Rh, Rw, 2]`` of the canvas pixels ``origin + (i, j)`` (frame pixels).

    ``theta [..., 2, 3]`` maps normalised frame coordinates to sprite coordinates (see
    :func:`placement_theta`); this evaluates it only where the object can be.
    """
    h, w = float(frame_size[0]), float(frame_size[1])
    rh, rw = canvas
    dev = theta.device
    ys = ((origin[..., 0:1] + torch.arange(rh, device=dev)) * 2 + 1) / h - 1  # [..., Rh]
    xs = ((origin[..., 1:2] + torch.arange(rw, device=dev)) * 2 + 1) / w - 1  # [..., Rw]
    col_x, col_y, col_t = (theta[..., c].unsqueeze(-2).unsqueeze(-2) for c in range(3))  # [..., 1, 1, 2]
    return col_t + xs[..., None, :, None] * col_x + ys[..., :, None, None] * col_y  # [..., Rh, Rw, 2]
