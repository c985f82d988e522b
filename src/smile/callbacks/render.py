"""Rendering: pictures of what the model sees and predicts, shared by the media callback and ``smile-vis``.

Pure torch (plus PIL / PyAV to write files); the callback that decides *when* to draw lives in
:mod:`smile.callbacks.media_logger`. Every panel is a uint8 clip ``[B, 3, T, H, W]``;
:func:`frame_strip` tiles panels into one image (rows = panels, columns = frames) and
:func:`side_by_side` lays them next to each other per frame for an animation. Tokens follow the
project's convention: t-major ``(t, h, w)`` order, bool masks with True = masked; pixel targets are
``(p c)`` cubes in :func:`smile.video.patchify`'s layout, and normalisation comes from :mod:`smile.video`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from smile.callbacks.confusion_plot import confusion_image as confusion_image  # re-exported: its old home
from smile.models import MaskedAutoencoder
from smile.video import denormalize, patchify, unpatchify


@runtime_checkable
class PixelCubeTarget(Protocol):
    """What rendering needs to know of a pixel target (the teachers' ``PixelTarget``) to draw its predictions.

    Matched by attributes, so this module does not import ``teachers/``: a feature target has no
    ``tubelet_size`` / ``normalize`` and is drawn as PCA colours instead.
    """

    patch_size: int
    tubelet_size: int
    normalize: bool  # each cube was standardised per channel
    eps: float  # added to the cube's std when it was standardised


def to_uint8(video01: Tensor) -> Tensor:
    """Float clips in [0, 1] -> uint8 (0..255), on the CPU."""
    return (video01.detach().float().clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8).cpu()


def expand_tokens(tokens: Tensor, grid: Sequence[int], patch_size: int, tubelet_size: int) -> Tensor:
    """Per-token values ``[B, N, C]`` -> a clip ``[B, C, T, H, W]`` where each token fills its cube."""
    t, h, w = grid
    x = rearrange(tokens, "b (t h w) c -> b c t h w", t=t, h=h, w=w)
    x = x.repeat_interleave(tubelet_size, dim=2).repeat_interleave(patch_size, dim=3)
    return x.repeat_interleave(patch_size, dim=4)  # [B, C, T, H, W]


def paint_mask(video: Tensor, mask: Tensor, patch_size: int, tubelet_size: int, fill: float = 0.0) -> Tensor:
    """``video [B, C, T, H, W]`` with the cubes of masked tokens (``mask [B, N]``, True = masked) set to ``fill``."""
    grid = (video.shape[2] // tubelet_size, video.shape[3] // patch_size, video.shape[4] // patch_size)
    cover = expand_tokens(mask[..., None].float(), grid, patch_size, tubelet_size).bool()  # [B, 1, T, H, W]
    return video.masked_fill(cover, fill)


def reconstruct_pixels(clip01: Tensor, mask: Tensor, preds: Tensor, target: PixelCubeTarget) -> Tensor:
    """The clip with masked cubes replaced by the predicted pixels, in [0, 1].

    Predictions of a per-cube normalised target (``target.normalize``) are un-normalised with the
    mean/std of the true cube, as VideoMAE's visualisation does: the picture shows the predicted
    structure at the right brightness, not an absolute-colour prediction.

    Args:
        clip01: Input clips in [0, 1], ``[B, 3, T, H, W]``.
        mask: bool ``[B, N]``, True = masked.
        preds: ``[B, N_masked, tubelet*p*p*3]`` in ascending masked-token order.
        target: The pixel target the model was trained on (patch sizes, normalisation).
    """
    p, pt = target.patch_size, target.tubelet_size
    grid = (clip01.shape[2] // pt, clip01.shape[3] // p, clip01.shape[4] // p)
    cubes = patchify(clip01.float(), p, pt).unflatten(-1, (-1, 3))  # [B, N, pt*p*p, 3]
    pred = preds.float().unflatten(-1, (-1, 3))  # [B, N_masked, pt*p*p, 3]
    if target.normalize:
        mean = cubes.mean(dim=-2, keepdim=True)[mask]  # [B*N_masked, 1, 3]
        std = cubes.var(dim=-2, unbiased=True, keepdim=True).sqrt()[mask]
        pred = pred.flatten(0, 1) * (std + target.eps) + mean  # [B*N_masked, pt*p*p, 3]
    full = cubes.clone()
    full[mask] = pred.reshape(-1, *cubes.shape[2:]).to(full.dtype)
    return unpatchify(full.flatten(2), grid, p, pt).clamp(0.0, 1.0)  # [B, 3, T, H, W]


def pca_colours(reference: Tensor, *others: Tensor) -> list[Tensor]:
    """Colour tokens by the first 3 principal components of ``reference`` features.

    The components and the colour range are fitted on ``reference`` (``[N, C]``, e.g. the teacher's
    features of one clip) and applied unchanged to ``others`` (same width), so equal colours mean
    equal features across the panels.

    Returns:
        ``[reference, *others]`` as ``[N, 3]`` colours in [0, 1].
    """
    ref = reference.float()
    centre = ref.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(ref - centre, full_matrices=False)
    basis = vh[:3].T  # [C, <=3]
    proj = [(x.float() - centre) @ basis for x in (ref, *others)]  # [N, <=3]
    lo, hi = proj[0].amin(0), proj[0].amax(0)
    out = [((x - lo) / (hi - lo).clamp_min(1e-6)).clamp(0.0, 1.0) for x in proj]
    return [torch.nn.functional.pad(x, (0, 3 - x.shape[1]), value=0.5) for x in out]


def feature_panels(
    net: nn.Module, target: nn.Module, video: Tensor, mask: Tensor, patch_size: int, tubelet_size: int
) -> tuple[Tensor, Tensor]:
    """PCA colourings ``(predicted, teacher)`` in [0, 1], ``[B, 3, T, H, W]`` each.

    Predicted features are the student's at masked tokens and the teacher's at visible ones.
    """
    teacher = target(video).float()  # [B, N, C]
    full = teacher.clone()
    full[mask] = net(video, mask).float().reshape(-1, teacher.shape[-1])
    grid = (video.shape[2] // tubelet_size, video.shape[3] // patch_size, video.shape[4] // patch_size)
    pairs = [pca_colours(teacher[b], full[b]) for b in range(video.shape[0])]
    gold = torch.stack([p[0] for p in pairs])  # [B, N, 3]
    pred = torch.stack([p[1] for p in pairs])
    return expand_tokens(pred, grid, patch_size, tubelet_size), expand_tokens(gold, grid, patch_size, tubelet_size)


@torch.no_grad()
def render_panels(
    net: MaskedAutoencoder,
    target: nn.Module,
    video: Tensor,
    mask: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    original: Tensor | None = None,
) -> dict[str, Tensor]:
    """The panels of a few clips: what went in, what was hidden, what the model predicts.

    Args:
        net: Masked autoencoder ``net(video, mask [B, N]) -> [B, N_masked, C]``.
        target: The target it regresses (a :class:`PixelCubeTarget` or a feature target).
        video: Normalised clips ``[B, 3, T, H, W]`` (with objects, if any).
        mask: bool ``[B, N]``, True = masked.
        mean: Normalisation mean of ``video``.
        std: Normalisation std of ``video``.
        original: uint8 ``[B, 3, T, H, W]`` clips before objects were pasted, or None.

    Returns:
        Ordered ``{name: uint8 [B, 3, T, H, W]}``: ``input`` (before objects) and ``objects`` when
        ``original`` is given, else ``input``; then ``masked``, ``prediction`` and, for feature
        targets, ``teacher`` (PCA colours of the teacher's features).
    """
    embed = net.encoder.patch_embed
    p, pt = embed.patch_size, embed.tubelet_size
    clip01 = denormalize(video, mean, std)  # [B, 3, T, H, W] in [0, 1]
    panels = {"input": original.cpu()} if original is not None else {}
    panels["objects" if original is not None else "input"] = to_uint8(clip01)
    panels["masked"] = to_uint8(paint_mask(clip01, mask, p, pt))
    if isinstance(target, PixelCubeTarget):
        panels["prediction"] = to_uint8(reconstruct_pixels(clip01, mask, net(video, mask), target))
    else:
        pred, gold = feature_panels(net, target, video, mask, p, pt)
        panels["prediction"], panels["teacher"] = to_uint8(pred), to_uint8(gold)
    return panels


def frame_strip(panels: Sequence[Tensor], labels: Sequence[str] | None = None) -> Tensor:
    """One clip's panels ``[3, T, H, W]`` each -> an image ``[P*H, T*W, 3]`` (rows = panels, columns = frames).

    With ``labels`` (one per panel, e.g. ``list(render_panels(...))``) each row is named in a column
    on its left, so a saved strip says which row is the input, the mask or the prediction:
    ``[P*H, L + T*W, 3]``, ``L`` the width of the longest label.
    """
    rows = [rearrange(x, "c t h w -> h (t w) c") for x in panels]
    strip = torch.cat(rows, dim=0).contiguous()
    if labels is None:
        return strip
    if len(labels) != len(rows):
        raise ValueError(f"frame_strip: {len(labels)} labels for {len(rows)} panels")
    return torch.cat([_label_column(labels, [r.shape[0] for r in rows]), strip], dim=1).contiguous()


def _label_column(labels: Sequence[str], heights: Sequence[int]) -> Tensor:
    """White text on black, one label per row band: uint8 ``[sum(heights), L, 3]``."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = 6 + max(int(probe.textbbox((0, 0), text, font=font)[2]) for text in labels)
    image = Image.new("RGB", (width, sum(heights)))
    draw, top = ImageDraw.Draw(image), 0
    for text, height in zip(labels, heights, strict=True):
        draw.text((3, top + 2), text, fill=(255, 255, 255), font=font)
        top += height
    return torch.from_numpy(np.asarray(image).copy())  # [sum(H), L, 3]


def side_by_side(panels: Sequence[Tensor]) -> Tensor:
    """One clip's panels ``[3, T, H, W]`` each -> frames ``[T, H, P*W, 3]`` with the panels left to right."""
    return torch.cat([rearrange(x, "c t h w -> t h w c") for x in panels], dim=2).contiguous()


# -- files ---------------------------------------------------------------------------------------
def write_png(path: str | Path, image: Tensor) -> Path:
    """Save a uint8 image ``[H, W, 3]`` as PNG (parent folders created)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.cpu().numpy()).save(path)
    return path


def write_animation(path: str | Path, frames: Tensor, fps: float = 4.0) -> Path:
    """Save uint8 frames ``[T, H, W, 3]`` as a looping GIF (``.gif``, PIL) or an MP4 (anything else, PyAV).

    MP4 frames are padded with black to even sides (yuv420p needs them); H.264 when the codec
    is available, else MPEG-4 Part 2.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames.cpu().numpy()]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return path
    _write_mp4(path, frames, fps)
    return path


def _write_mp4(path: Path, frames: Tensor, fps: float) -> None:
    import av

    _, h, w, _ = frames.shape
    frames = torch.nn.functional.pad(frames, (0, 0, 0, w % 2, 0, h % 2))  # [T, H', W', 3], even sides
    with av.open(str(path), "w") as container:
        try:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        except Exception:  # noqa: BLE001 - FFmpeg builds without x264
            stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames.cpu().numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
