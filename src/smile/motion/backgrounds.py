"""Backgrounds for learning without natural video (SPEC §2.4 "No natural video", §8.6 Table 7).

The reference code has none of these; the paper reports them. ``data.background`` picks one:

=====================  ==================================================================
``video``              the clip itself (default; SMILE on K400)
``video_frame_static`` one random frame of the clip repeated T times (the paper's K400m-1frm)
``black``              zeros
``noise``              i.i.d. uniform [0, 1) noise per pixel, channel **and frame**
``noise_static``       one uniform noise image per clip, repeated over time
``image``              one random still image per clip (e.g. Places), resized to H x W, static
=====================  ==================================================================

Which noise the paper used is not public: Table 7 calls it "noise image + motion", next to
"black image" and "image", which suggests a single static noise image (``noise_static``); the
per-frame variant (``noise``) is the other reading and the default name. Both are here so the
ablation can be run either way.

Random draws: frame and image indices come from ``generator`` on its own device; per-pixel
noise is drawn on the video's device with ``generator`` itself when it lives there, else with a
generator seeded from one draw of ``generator`` (see :func:`generator_on`), so a CPU generator
gives reproducible noise on a GPU without a host->device copy of the noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from smile.motion.sprites import ObjectBank

__all__ = ["BACKGROUNDS", "apply_background", "generator_on"]

BACKGROUNDS = ("video", "video_frame_static", "black", "noise", "noise_static", "image")


def generator_on(device: torch.device | str, generator: torch.Generator | None) -> torch.Generator | None:
    """A generator usable on ``device``: ``generator`` itself if it lives there, else a new one
    seeded from one 63-bit draw of ``generator`` (which advances it). None stays None."""
    if generator is None:
        return None
    device = torch.device(device)
    gdev = generator.device
    if gdev.type == device.type and (device.index is None or gdev.index is None or gdev.index == device.index):
        return generator
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=gdev).item())
    return torch.Generator(device=device).manual_seed(seed)


def _randint(high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``randint`` drawn on the generator's device (a cheap, tiny draw), returned on ``device``."""
    draw_device = generator.device if generator is not None else device
    return torch.randint(high, shape, generator=generator, device=draw_device).to(device)


def _static(frames: Tensor, num_frames: int) -> Tensor:
    """``[B, 3, H, W]`` -> contiguous ``[B, 3, T, H, W]`` (each frame repeated)."""
    b, c, h, w = frames.shape
    return frames[:, :, None].expand(b, c, num_frames, h, w).contiguous()


def _pick_images(
    images: ObjectBank | Tensor,
    batch_size: int,
    size: tuple[int, int],
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``batch_size`` random images as float ``[B, 3, H, W]`` in [0, 1] on ``device``.

    RGBA images are composited over black (``rgb * alpha``); resizing is bilinear with
    antialiasing, ignoring aspect ratio (as the reference's crop resize does).
    """
    n = len(images)
    if n == 0:
        raise ValueError("background='image' needs a non-empty image bank")
    ids = _randint(n, (batch_size,), generator, torch.device("cpu"))
    if isinstance(images, ObjectBank):
        pick = images.take(ids, device=device)  # [B, 4, S, S] float
    else:
        if images.dim() != 4 or images.shape[1] not in (3, 4):
            raise ValueError(f"background images must be [M, 3|4, h, w], got {list(images.shape)}")
        pick = images.index_select(0, ids.to(images.device)).to(device)
        pick = pick.float() / 255.0 if pick.dtype == torch.uint8 else pick.float()
    rgb = pick[:, :3] * pick[:, 3:4] if pick.shape[1] == 4 else pick  # [B, 3, h, w]
    if tuple(rgb.shape[-2:]) != size:
        rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return rgb


def apply_background(
    video: Tensor,
    mode: str = "video",
    generator: torch.Generator | None = None,
    images: ObjectBank | Tensor | None = None,
) -> Tensor:
    """Replace the clips' content by the chosen background (see the module docstring).

    Args:
        video: float ``[B, 3, T, H, W]`` in [0, 1].
        mode: one of :data:`BACKGROUNDS`.
        generator: optional generator (any device) for reproducible draws.
        images: still images for ``mode="image"``: an :class:`ObjectBank` (RGBA) or a
            ``[M, 3|4, h, w]`` uint8 / float tensor.

    Returns:
        ``video`` itself for ``"video"``; otherwise a new contiguous tensor of the same shape,
        dtype and device.
    """
    if video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(f"apply_background expects video [B, 3, T, H, W], got {list(video.shape)}")
    b, _, t, h, w = video.shape
    dev = video.device
    if mode == "video":
        return video
    if mode == "video_frame_static":
        idx = _randint(t, (b,), generator, dev)
        return _static(video[torch.arange(b, device=dev), :, idx], t)  # [B, 3, T, H, W]
    if mode == "black":
        return torch.zeros_like(video)
    if mode in ("noise", "noise_static"):
        shape = (b, 3, t, h, w) if mode == "noise" else (b, 3, h, w)
        noise = torch.rand(shape, generator=generator_on(dev, generator), device=dev, dtype=video.dtype)
        return noise if mode == "noise" else _static(noise, t)
    if mode == "image":
        if images is None:
            raise ValueError("background='image' needs background images (e.g. smile.data.objects.load_images)")
        return _static(_pick_images(images, b, (h, w), generator, dev).to(video.dtype), t)
    raise ValueError(f"unknown background {mode!r}; choose one of {', '.join(BACKGROUNDS)}")
