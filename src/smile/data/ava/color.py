"""The reference's training colour jitter for AVA clips: one HSV shift per clip, in torch.

VideoMAE-Action-Detection (AlphAction's transforms) jitters every training clip once, after the
short-side resize and the random crop and before the flip (a per-pixel map, so its order with the
flip does not matter): the clip goes RGB -> HSV in OpenCV's 8-bit convention (H in 0..179 =
degrees / 2, S and V in 0..255), integer shifts drawn uniformly within inclusive bounds are added
(H modulo 180; S and V clipped to 0..255), and the clip goes back to RGB. The same shifts serve
every frame. The recipe's amounts are hue 20 degrees, saturation 0.1 and value 0.1, i.e. shifts in
``[-10, 10]`` (H) and ``[-26, 26]`` (S, V).

Ours (:func:`hsv_jitter`) is an approximation: the standard hexcone HSV in float (hue in degrees,
S and V in ``[0, 1]``), with the 8-bit shifts mapped to the float scales (hue ``+ 2 * hue_s``
degrees, S ``+ sat_s / 255``, V ``+ val_s / 255``) and one rounding back to uint8 at the end.
OpenCV rounds H (to 2-degree steps), S and V to 8-bit integers between the two conversions, so
pixels differ from the reference by a few levels (on uniformly random colours: half a level on
average, 3 at the 99th percentile, at most 6, measured against OpenCV 5.0; OpenCV's own round trip
with zero shifts is off by as much, ours is exact). The draws
(:func:`draw_hsv_shifts`) have the reference's bounds exactly. No OpenCV dependency, and the same
code runs on any torch device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["check_color_jitter", "draw_hsv_shifts", "hsv_jitter"]

_KEY = "data.train_dataset.color_jitter"
_TINY = 1e-12  # below any non-zero 8-bit difference (1 / 255)


def check_color_jitter(value: Sequence[float] | None) -> tuple[float, float, float] | None:
    """``(hue_degrees, sat, val)`` from the config's ``color_jitter`` (None = off; a ``ListConfig`` works).

    Raises:
        ValueError: Not three finite non-negative numbers (names the key and the value).
    """
    if value is None:
        return None
    try:
        amounts = () if isinstance(value, str) else tuple(float(v) for v in value)
    except (TypeError, ValueError):
        amounts = ()
    if len(amounts) != 3 or not all(math.isfinite(a) and a >= 0 for a in amounts):
        shown = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        raise ValueError(
            f"{_KEY}={shown!r} must be three non-negative numbers [hue_degrees, saturation, value] "
            "(the reference: [20, 0.1, 0.1]) or null to turn the colour jitter off"
        )
    return amounts[0], amounts[1], amounts[2]


def draw_hsv_shifts(rng: np.random.Generator, hue: float, sat: float, val: float) -> tuple[int, int, int]:
    """One clip's integer HSV shifts on OpenCV's 8-bit scales, uniform within the reference's inclusive bounds.

    Bounds: ``round(hue / 2)`` for H (hue in degrees, H in half degrees), ``round(sat * 255)`` and
    ``round(val * 255)`` for S and V; one ``rng.integers`` call draws all three (H, S, V).

    Returns:
        ``(hue_s, sat_s, val_s)``.
    """
    bounds = np.array([round(hue / 2), round(sat * 255), round(val * 255)], dtype=np.int64)  # [3]
    hue_s, sat_s, val_s = rng.integers(-bounds, bounds, endpoint=True).tolist()
    return int(hue_s), int(sat_s), int(val_s)


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """Float RGB in ``[0, 1]`` ``[3, ...]`` -> HSV ``[3, ...]``: hue in degrees ``[0, 360)`` (0 for greys), S, V.

    A grey has ``delta = 0`` and ``r = g = b``: its hue numerator is 0 too, so dividing by a clamped
    ``delta`` gives hue 0 without a branch (and ``delta / V`` gives S = 0, black included).
    """
    r, g, b = rgb.unbind(0)
    value = rgb.amax(dim=0)
    delta = value - rgb.amin(dim=0)
    safe = delta.clamp_min(_TINY)
    hue = torch.where(value == r, ((g - b) / safe) % 6, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return torch.stack([hue * 60, delta / value.clamp_min(_TINY), value])


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV ``[3, ...]`` (hue in degrees) -> float RGB ``[3, ...]``: ``c = V - V S clamp(min(k, 4 - k), 0, 1)``.

    ``k = (n + H / 60) mod 6`` with ``n = 5, 3, 1`` for R, G, B: the hexcone's six linear pieces
    without branches.
    """
    hue, sat, value = hsv.unbind(0)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device).view(3, *[1] * hue.ndim)  # [3, 1, ...]
    k = (n + hue / 60) % 6  # [3, ...]
    return value - value * sat * torch.minimum(k, 4 - k).clamp(0, 1)  # [3, ...]


def hsv_jitter(clip: torch.Tensor, hue_shift: int, sat_shift: int, val_shift: int, dim: int = -3) -> torch.Tensor:
    """Shift a uint8 RGB clip's hue, saturation and value by the reference's 8-bit amounts (module docstring).

    Args:
        clip: uint8 RGB with the 3 channels on axis ``dim``: ``[..., 3, H, W]`` by default; the AVA
            dataset's clips are ``[3, T, H, W]`` (``dim=0``).
        hue_shift: Added to H on OpenCV's 0..179 scale (half degrees), modulo 180.
        sat_shift: Added to S on 0..255, then clipped.
        val_shift: Added to V on 0..255, then clipped.
        dim: The channel axis.

    Returns:
        uint8, the shape of ``clip``, the same shifts applied to every pixel of every frame.

    Raises:
        ValueError: ``clip`` is not uint8 or its axis ``dim`` does not have 3 channels.
    """
    if clip.dtype != torch.uint8 or clip.ndim == 0 or clip.shape[dim] != 3:
        raise ValueError(
            f"hsv_jitter expects uint8 RGB with 3 channels on axis {dim}, got {clip.dtype} {tuple(clip.shape)}"
        )
    rgb = clip.movedim(dim, 0).float() / 255  # [3, ...]
    hue, sat, value = _rgb_to_hsv(rgb).unbind(0)
    hsv = torch.stack(
        [(hue + 2 * hue_shift) % 360, (sat + sat_shift / 255).clamp(0, 1), (value + val_shift / 255).clamp(0, 1)]
    )  # [3, ...]
    out = (_hsv_to_rgb(hsv) * 255).round().clamp(0, 255).to(torch.uint8)  # [3, ...]
    return out.movedim(0, dim).contiguous()
