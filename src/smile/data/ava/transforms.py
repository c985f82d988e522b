"""Box-aware clip transforms for AVA, following the reference (VideoMAE-Action-Detection, built on AlphAction).

One resize, crop and flip serve every frame of a clip and its person boxes. Clips arrive as torch
uint8 frames ``[T, 3, H, W]`` (the layout the resize kernel wants) and leave as ``[3, T, h, w]``;
boxes are float32 ``[K, 4]`` ``x1, y1, x2, y2`` in continuous pixel coordinates (pixel ``i``
covers ``[i, i + 1)``), so a box of normalised coordinates ``b`` in a ``W x H`` frame is
``b * [W, H, W, H]`` and maps through a resize by a scale (``align_corners=False`` sampling uses
the same coordinates), through a crop by a shift and through a horizontal flip of a ``W``-wide
clip by ``x1' = W - x2``, ``x2' = W - x1``.

The reference's pipeline, reproduced here:

* Training (:class:`AvaTrainTransform`): resize every frame so that its short side is
  ``short_side`` (256), keeping the aspect ratio (long side ``int(short_side * long / short)``);
  crop ``crop_size`` (``video.img_size``, 224 x 224 in the recipe) at ``x0 = int(u * (W - w))``,
  ``y0 = int(v * (H - h))``, ``u, v ~ U[0, 1)``; shift the boxes by the crop's offset and clamp
  them into ``[0, w] x [0, h]``; flip horizontally with probability 0.5.
* Evaluation (:class:`AvaTestTransform`): no crop, no flip; boxes scaled with the frame.

Deviations (each for a reason):

* Evaluation resizes every frame to one fixed ``test_size`` (the recipe's ``[256, 448]``: AVA's
  16:9 frames at short side 256 are 256 x 455, rounded down to the patch multiple 448), stretching
  frames of another aspect ratio; boxes are scaled with separate x and y factors. The reference
  keeps each frame's aspect and pads the batch, which feeds padding tokens to the encoder; one
  size makes every evaluation batch one tensor and one token grid.
* Resizing is the project's antialiased bilinear (PIL-like, :func:`~smile.data.transforms.common.resize_clip`),
  kept as everywhere else in the project; the reference uses ``cv2.resize``'s bilinear without
  antialiasing, which aliases on downscales (AVA's frames are larger than 256 px), up to ~25 grey
  levels apart on textures.
* Training drops boxes whose clamped area is 0 (entirely outside the crop), with their labels;
  the reference keeps them as empty boxes, whose pooled features show no person but whose labels
  still enter the loss. When a crop would drop every box, the crop is centred on the union of the
  boxes instead (clamped into the frame); if that still misses every box (persons further apart
  than the crop), on the largest box, which it then always holds (only a clip whose boxes all have
  zero area ends up without any). An item without persons teaches nothing, and a batch of them has
  no loss to average.
* The reference's training colour jitter (HSV: hue +-10 on OpenCV's 0-180 scale, saturation and
  value +-26 on 0-255) is applied by the dataset after this transform (:mod:`smile.data.ava.color`),
  in float HSV: pixels differ from OpenCV's 8-bit round trip by a few levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_area, clip_boxes_to_image

from smile.data.transforms.common import resize_clip
from smile.data.transforms.crops import ShortSideResize

__all__ = [
    "AvaTestTransform",
    "AvaTrainTransform",
    "ClipCrop",
    "as_size",
    "centred_crop",
    "sample_crop",
    "scale_boxes",
    "transform_boxes",
    "transform_clip",
]


def as_size(img_size: int | Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` from ``video.img_size``: an int (square) or a pair (a Hydra ``ListConfig`` works).

    Raises:
        ValueError: Not an int or a pair of positive ints (names the value).
    """
    if isinstance(img_size, int | np.integer):
        size = (int(img_size), int(img_size))
    else:
        values = list(img_size)
        if len(values) != 2:
            raise ValueError(f"img_size must be an int or [H, W], got {values!r}")
        size = (int(values[0]), int(values[1]))
    if min(size) < 1:
        raise ValueError(f"img_size sides must be >= 1, got {img_size!r}")
    return size


@dataclass(frozen=True)
class ClipCrop:
    """A crop window in pixels of the resized frame, and whether the result is flipped horizontally."""

    x0: int
    y0: int
    width: int
    height: int
    flip: bool = False


def sample_crop(
    frame_size: tuple[int, int], crop_size: tuple[int, int], rng: np.random.Generator, flip_prob: float = 0.5
) -> ClipCrop:
    """The reference's random crop of ``crop_size`` in a ``frame_size`` frame (both ``(H, W)``), and a flip draw.

    ``x0 = int(u * (W - w))``, ``y0 = int(v * (H - h))``; draws ``u``, ``v``, then the flip, so a
    seeded ``rng`` fixes the crop. The crop must fit (:class:`AvaTrainTransform` checks it).
    """
    (fh, fw), (ch, cw) = frame_size, crop_size
    u, v = rng.random(2)
    return ClipCrop(int(u * (fw - cw)), int(v * (fh - ch)), cw, ch, bool(rng.random() < flip_prob))


def centred_crop(frame_size: tuple[int, int], crop_size: tuple[int, int], box: torch.Tensor, flip: bool) -> ClipCrop:
    """The ``crop_size`` window centred on ``box`` ``[4]`` (rounded), shifted to lie inside ``frame_size``.

    Clamping keeps the box's centre inside the window, so a box of positive area keeps a part.
    """
    (fh, fw), (ch, cw) = frame_size, crop_size
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    x0, y0 = min(max(round(cx - cw / 2), 0), fw - cw), min(max(round(cy - ch / 2), 0), fh - ch)
    return ClipCrop(x0, y0, cw, ch, flip)


def scale_boxes(boxes: torch.Tensor, frame_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """Pixel boxes ``[K, 4]`` of a ``frame_size`` frame -> of that frame resized to ``out_size`` (x, y apart)."""
    (fh, fw), (oh, ow) = frame_size, out_size
    return boxes.float() * torch.tensor([ow / fw, oh / fh] * 2, dtype=torch.float32)  # [K, 4]


def transform_boxes(boxes: torch.Tensor, crop: ClipCrop) -> torch.Tensor:
    """Pixel boxes ``[K, 4]`` of the resized frame -> pixel boxes of the crop (and flip).

    Boxes are shifted into the crop and clamped to ``[0, width] x [0, height]`` (a box partly
    outside keeps its inside part, a box outside becomes a zero-area row), then mirrored when
    ``crop.flip``.

    Returns:
        ``[K, 4]`` float32 boxes in clip pixels.
    """
    shift = torch.tensor([crop.x0, crop.y0, crop.x0, crop.y0], dtype=torch.float32)
    out = clip_boxes_to_image(boxes.float() - shift, (crop.height, crop.width))  # [K, 4]
    if crop.flip:
        out = torch.stack([crop.width - out[:, 2], out[:, 1], crop.width - out[:, 0], out[:, 3]], dim=1)
    return out


def transform_clip(frames: torch.Tensor, size: tuple[int, int], crop: ClipCrop | None = None) -> torch.Tensor:
    """uint8 frames ``[T, 3, H, W]`` resized to ``size`` (bilinear, antialiased), cropped and flipped: ``[3, T, h, w]``.

    Args:
        frames: uint8 ``[T, 3, H, W]``.
        size: ``(H, W)`` of the resized frames.
        crop: A window of the resized frames (and the flip), or None for the whole resized frame.
    """
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames [T, 3, H, W], got {frames.dtype} {tuple(frames.shape)}")
    clip = resize_clip(frames, size)  # [T, 3, *size]
    if crop is not None:
        clip = clip[:, :, crop.y0 : crop.y0 + crop.height, crop.x0 : crop.x0 + crop.width]  # [T, 3, h, w]
        if crop.flip:
            clip = clip.flip(-1)
    return clip.permute(1, 0, 2, 3).contiguous()  # [3, T, h, w]


class AvaTrainTransform:
    """Training: short side to ``short_side``, a random ``crop_size`` crop, a horizontal flip (module docstring).

    Args:
        crop_size: The crop (the training clip's size): a side, or ``(H, W)`` (``video.img_size``).
        short_side: Short side of every frame before cropping (``data.train_dataset.short_side``).
        flip_prob: Probability of the horizontal flip.

    Raises:
        ValueError: ``short_side`` below both crop sides (no frame could hold the crop), or
            ``flip_prob`` outside ``[0, 1]``.
    """

    def __init__(self, crop_size: int | Sequence[int], short_side: int, flip_prob: float = 0.5) -> None:
        self.crop_size, self.short_side = as_size(crop_size), int(short_side)
        if self.short_side < min(self.crop_size):
            raise ValueError(
                f"data.train_dataset.short_side={self.short_side} is below both sides of the training crop "
                f"video.img_size={list(self.crop_size)}: no frame could hold the crop; set short_side >= "
                f"{min(self.crop_size)} (the reference: 256 for a 224 crop)"
            )
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.resize, self.flip_prob = ShortSideResize(self.short_side), float(flip_prob)

    def resized_size(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` of a ``frame_size`` frame after the short-side resize; it must hold the crop.

        Raises:
            ValueError: The resized frame is smaller than the crop in a dimension (names the sizes
                and the keys to change).
        """
        size = self.resize.output_size(*frame_size)
        if size[0] < self.crop_size[0] or size[1] < self.crop_size[1]:
            raise ValueError(
                f"AVA frame {frame_size[0]}x{frame_size[1]} (H x W) resized to short side "
                f"data.train_dataset.short_side={self.short_side} is {size[0]}x{size[1]}, smaller than the "
                f"training crop video.img_size={list(self.crop_size)}: raise short_side or lower img_size"
            )
        return size

    def __call__(
        self, frames: torch.Tensor, boxes: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transform one clip and its boxes.

        Args:
            frames: uint8 ``[T, 3, H, W]``.
            boxes: ``[K, 4]`` pixel boxes of the original frame.
            rng: The item's generator (draws the crop and the flip).

        Returns:
            The clip uint8 ``[3, T, h, w]`` (``(h, w) = crop_size``), the kept boxes ``[K', 4]`` in
            clip pixels and the bool mask ``[K]`` of kept boxes (to select their labels).
        """
        frame_size = (int(frames.shape[-2]), int(frames.shape[-1]))
        size = self.resized_size(frame_size)
        scaled = scale_boxes(boxes, frame_size, size)  # [K, 4] resized-frame pixels
        crop = sample_crop(size, self.crop_size, rng, self.flip_prob)
        out = transform_boxes(scaled, crop)  # [K, 4]
        keep = box_area(out) > 0  # [K]
        if len(boxes) and not keep.any():
            crop, out, keep = self._fallback(scaled, size, crop.flip)
        return transform_clip(frames, size, crop), out[keep], keep

    def _fallback(
        self, scaled: torch.Tensor, size: tuple[int, int], flip: bool
    ) -> tuple[ClipCrop, torch.Tensor, torch.Tensor]:
        """The crop centred on the boxes' union, else on the largest box (module docstring); the flip draw kept."""
        union = torch.cat([scaled[:, :2].min(dim=0).values, scaled[:, 2:].max(dim=0).values])  # [4]
        largest = scaled[box_area(scaled).argmax()]  # [4]
        for target in (union, largest):
            crop = centred_crop(size, self.crop_size, target, flip)
            out = transform_boxes(scaled, crop)  # [K, 4]
            keep = box_area(out) > 0  # [K]
            if keep.any():
                break
        return crop, out, keep


class AvaTestTransform:
    """Evaluation: every frame stretched to ``size`` (no crop, no flip); boxes scaled in x and y.

    Every box is kept (each proposal must receive a detection), clamped to the frame.

    Args:
        size: The evaluation clip's side, or ``(H, W)`` (``data.val_dataset.test_size``).
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = as_size(size)

    def __call__(self, frames: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[T, 3, H, W]`` uint8 and ``[K, 4]`` pixel boxes -> clip ``[3, T, *size]`` and ``[K, 4]`` clip boxes."""
        frame_size = (int(frames.shape[-2]), int(frames.shape[-1]))
        out = clip_boxes_to_image(scale_boxes(boxes, frame_size, self.size), self.size)  # [K, 4]
        return transform_clip(frames, self.size, None), out
