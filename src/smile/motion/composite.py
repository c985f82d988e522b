"""Batched object overlay: warp RGBA sprites along their trajectories and alpha-blend them (SPEC §2.4).

One affine sampling grid + ``grid_sample`` per object index places that object in every frame of every
clip at once (scale to the box, rotate about the box centre, translate), then
``pixel = pixel * (1 - a) + rgb * a``. Objects are pasted per clip in descending order of their
mean box area (largest first, so small objects end up on top), as the reference does. The same
code runs on CPU and GPU; only the loop over the K (= 2) objects is in Python.

Geometry (:mod:`smile.motion.warp`): the integer box ``(8, 8, 24, 24)`` covers pixels 8..23, the
reference's ``frame[y1:y2, x1:x2]``; a positive angle rotates clockwise on screen. The rotated sprite
may extend beyond its box and beyond the frame; what falls outside the frame is dropped. This module
does the pasting: one ``grid_sample`` per group of clips onto a canvas, then an in-place alpha blend.

Deviations from the reference, on purpose:

- **One resample per frame** (S x S sprite -> frame, bilinear, scale + rotation + translation in
  one matrix) after one bicubic resample at packing time (file -> S x S), instead of the
  reference's three: PIL bicubic resize to one frame's box, again to each frame's box, then
  OpenCV bilinear rotation on an enlarged canvas.
- **Premultiplied alpha while sampling**: colour is interpolated as ``rgb * a`` so transparent
  texels (whose RGB is arbitrary) do not darken or tint the edges; for texels that are not
  resampled the result equals the reference formula.
- **Antialiasing** (``antialias=True``): before sampling, each sprite is low-pass filtered to the
  power-of-two level just above its largest box side (a one-level mipmap), so shrinking a
  128-px sprite to a 32-px box does not alias; PIL's resize in the reference antialiases too.
- **Float blending**: no rounding or truncation to uint8 between steps (the reference truncates).
- Boxes are not rounded here and frames need not be square (the reference's bounds check
  assumes square frames, SPEC §10.13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from smile.motion.warp import mip_levels, placement_theta, prefilter, premultiply, region_grid, regions

__all__ = ["composite"]


def _check_shapes(video: Tensor, sprites: Tensor, boxes: Tensor, angles: Tensor) -> None:
    if video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(f"composite: video must be [B, 3, T, H, W], got {list(video.shape)}")
    b, _, t = video.shape[:3]
    if sprites.dim() != 5 or sprites.shape[:1] != (b,) or sprites.shape[2] != 4:
        raise ValueError(f"composite: sprites must be [B={b}, K, 4, S, S], got {list(sprites.shape)}")
    k = sprites.shape[1]
    if tuple(boxes.shape) != (b, k, t, 4) or tuple(angles.shape) != (b, k, t):
        raise ValueError(
            f"composite: boxes must be [{b}, {k}, {t}, 4] and angles [{b}, {k}, {t}], "
            f"got {list(boxes.shape)} and {list(angles.shape)}"
        )


def _flat_index(shape: Sequence[int], lead: Tensor, origin: Tensor, canvas: tuple[int, int]) -> Tensor:
    """Flat indices ``[G, C, T, Rh, Rw]`` of the canvas pixels in a contiguous ``[N, C, T, H, W]`` tensor.

    Args:
        shape: ``(N, C, T, H, W)`` of the target tensor.
        lead: ``[G]`` index along its first dimension.
        origin: ``[G, T, 2]`` (y0, x0) of each canvas.
    """
    _, c, t, h, w = shape
    g = lead.shape[0]
    dev = lead.device
    base = ((lead.view(g, 1, 1) * c + torch.arange(c, device=dev).view(1, c, 1)) * t + torch.arange(t, device=dev)) * (
        h * w
    )
    offset = (origin[..., 0] * w + origin[..., 1]).view(g, 1, t)  # [G, 1, T]
    pixels = torch.arange(canvas[0], device=dev).view(-1, 1) * w + torch.arange(canvas[1], device=dev)  # [Rh, Rw]
    return (base + offset).view(g, c, t, 1, 1) + pixels


def _blend_regions(out: Tensor, warped: Tensor, rows: Tensor, origin: Tensor, views: bool | None = None) -> None:
    """``out[rows[g], :, t, y:y+Rh, x:x+Rw] = region * (1 - a) + rgb`` for every clip g and frame t.

    On the CPU, slicing views costs a fraction of a gather/scatter; on an accelerator one flat
    gather + scatter avoids thousands of tiny kernels. ``views`` forces one path (None: by device).
    """
    g, _, t, rh, rw = warped.shape
    if out.device.type == "cpu" if views is None else views:
        rows_l, org = rows.tolist(), origin.tolist()
        for gi in range(g):
            for ti in range(t):
                y, x = org[gi][ti]
                region = out[rows_l[gi], :, ti, y : y + rh, x : x + rw]  # a view
                src = warped[gi, :, ti]
                region.addcmul_(region, src[3:4], value=-1.0).add_(src[:3])
        return
    index = _flat_index(out.shape, rows, origin, (rh, rw))  # [G, 3, T, Rh, Rw]
    flat = out.view(-1)
    region = flat.take(index)
    flat.index_put_((index,), region - region * warped[:, 3:4] + warped[:, :3])


def _paste_group(
    out: Tensor, sprites: Tensor, theta: Tensor, origin: Tensor, size: Tensor, rows: Tensor
) -> tuple[Tensor, Tensor]:
    """Warp one sprite per clip of ``rows`` into its regions and alpha-blend it into ``out`` in place.

    Args:
        out: ``[B, 3, T, H, W]`` contiguous frames, modified in place.
        sprites: ``[G, 4, S, S]`` premultiplied sprites of the G clips ``rows``.
        theta: ``[G, T, 2, 3]``; origin / size: ``[G, T, 2]`` regions (see :func:`~smile.motion.warp.regions`).

    Returns:
        ``(alpha [G, T, Rh, Rw], origin [G, T, 2] long)``: the warped coverage and where it sits.
    """
    _, _, t, h, w = out.shape
    g = rows.shape[0]
    rh, rw = (int(v) for v in size.amax(dim=(0, 1)).clamp_min(1).tolist())  # size lives on the CPU: no sync
    # shift regions inward so the common canvas stays inside the frame (its extra pixels are transparent)
    limit = torch.tensor([h - rh, w - rw], device=out.device, dtype=origin.dtype)
    origin = torch.minimum(origin, limit).long()
    grid = region_grid(theta, origin, (rh, rw), (h, w))  # [G, T, Rh, Rw, 2]
    warped = F.grid_sample(
        sprites, grid.view(g, t * rh, rw, 2), mode="bilinear", padding_mode="zeros", align_corners=False
    ).view(g, 4, t, rh, rw)  # premultiplied
    _blend_regions(out, warped, rows, origin)
    return warped[:, 3], origin


@overload
def composite(
    video: Tensor,
    sprites: Tensor,
    boxes: Tensor,
    angles: Tensor,
    *,
    premultiplied: bool = ...,
    antialias: bool = ...,
    inplace: bool = ...,
    return_alpha: Literal[False] = ...,
    group_size: int | None = ...,
) -> Tensor: ...


@overload
def composite(
    video: Tensor,
    sprites: Tensor,
    boxes: Tensor,
    angles: Tensor,
    *,
    premultiplied: bool = ...,
    antialias: bool = ...,
    inplace: bool = ...,
    return_alpha: Literal[True],
    group_size: int | None = ...,
) -> tuple[Tensor, Tensor]: ...


def composite(
    video: Tensor,
    sprites: Tensor,
    boxes: Tensor,
    angles: Tensor,
    *,
    premultiplied: bool = False,
    antialias: bool = True,
    inplace: bool = False,
    return_alpha: bool = False,
    group_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Paste ``K`` moving sprites into every clip.

    Work is spent only where an object can be: for each paste rank (largest objects first), the
    clips are sorted by the size of their object's region and processed in groups of
    ``group_size``, each group warping onto a canvas as large as its largest region (one
    ``grid_sample`` per group) and blending it into the frames by index. That costs about the
    objects' area instead of K full frames per clip.

    Args:
        video: float ``[B, 3, T, H, W]`` in [0, 1].
        sprites: float ``[B, K, 4, S, S]`` RGBA in [0, 1] (straight alpha unless ``premultiplied``).
        boxes: ``[B, K, T, 4]`` ``(x1, y1, x2, y2)`` pixels, pre-rotation, may leave the frame.
        angles: ``[B, K, T]`` degrees, positive = clockwise.
        premultiplied: the sprites' RGB is already multiplied by alpha.
        antialias: low-pass sprites that are shrunk (see the module docstring).
        inplace: write into ``video`` instead of a copy.
        return_alpha: also return each object's warped alpha (its coverage, ignoring occlusion).
        group_size: clips per warp: larger means fewer kernel launches but more wasted canvas.
            None: 1 on the CPU (measured fastest: 7 ms per 16x224x224 clip on one core, against
            37 ms for full-frame warps), 16 on accelerators, where launches cost more than pixels.

    Returns:
        The blended video (same dtype/device as ``video``; warping in float32), with ``return_alpha`` a
        float ``[B, K, T, H, W]`` coverage in [0, 1], indexed by the original object order.
    """
    _check_shapes(video, sprites, boxes, angles)
    b, _, t, h, w = video.shape
    k = sprites.shape[1]
    dev = video.device
    out = video if inplace and video.is_contiguous() else video.contiguous().clone()
    spr = sprites.to(dev, torch.float32)
    spr = spr if premultiplied else premultiply(spr)  # [B, K, 4, S, S]
    if antialias:
        spr = prefilter(spr.flatten(0, 1), mip_levels(boxes, spr.shape[-1])).view_as(spr)
    # Bookkeeping (paste order, regions, groups) stays where the boxes were sampled (the CPU), so
    # reading canvas sizes never waits for the accelerator; only placements move to the device.
    boxes, angles = boxes.float(), angles.float()
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp_min(0)  # [B, K, T, 2]
    order = torch.argsort(wh.prod(-1).mean(-1), dim=1, descending=True, stable=True)  # [B, K], largest first
    theta = placement_theta(boxes, angles, (h, w)).to(dev)  # [B, K, T, 2, 3]
    origin, size = regions(boxes, angles, (h, w))  # [B, K, T, 2] each
    origin_dev = origin.to(dev)
    alphas = torch.zeros(b, k, t, h, w, device=dev) if return_alpha else None
    rows_all = torch.arange(b, device=boxes.device)
    group_size = group_size or (1 if dev.type == "cpu" else 16)
    for rank in range(k):
        obj = order[:, rank]  # [B]
        area = size[rows_all, obj].amax(1).prod(-1)  # [B] largest region of the clip's object
        by_area = torch.argsort(area, descending=True)
        for start in range(0, b, group_size):
            rows, sel = by_area[start : start + group_size], obj[by_area[start : start + group_size]]
            rows_d, sel_d = rows.to(dev), sel.to(dev)
            alpha, placed = _paste_group(
                out, spr[rows_d, sel_d], theta[rows_d, sel_d], origin_dev[rows_d, sel_d], size[rows, sel], rows_d
            )
            if alphas is not None:  # coverage of object `sel` of clip `rows`: [B*K, 1, T, H, W] flat
                canvas = (int(alpha.shape[-2]), int(alpha.shape[-1]))
                index = _flat_index((b * k, 1, t, h, w), rows_d * k + sel_d, placed, canvas)
                alphas.view(-1)[index.view(-1)] = alpha.reshape(-1)
    return out if alphas is None else (out, alphas)
