"""The confusion-matrix picture: a labelled heat map drawn with PIL (no plotting library needed).

Rows are true classes, columns predictions, colours the row-normalised recall (white = 0, dark
blue = 1) with a colour bar. Up to :data:`NAMED_MAX` classes the ticks carry the class names and,
up to :data:`COUNTS_MAX`, each cell its count; beyond that (K400's 400 classes) names and counts
would be unreadable, so the picture keeps the axes and the colour bar and scales each class to
``max(1, size // K)`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

__all__ = ["COUNTS_MAX", "NAMED_MAX", "confusion_image"]

NAMED_MAX = 40  # class names on the ticks up to this many classes
COUNTS_MAX = 25  # counts in the cells up to this many classes
MAX_CELL, MIN_NAMED_CELL = 48, 12  # pixels per class when the classes are named
NAME_CHARS = 28  # longer names are cut with "…" (SSv2 templates)
PAD, BAR = 6, 14
WHITE, BLUE = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _colour(recall: np.ndarray) -> np.ndarray:
    """Recall in [0, 1] ``[...]`` -> RGB uint8 ``[..., 3]`` from white to dark blue."""
    return np.rint(WHITE + recall[..., None] * (BLUE - WHITE)).astype(np.uint8)


def _text_size(font: Font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _vertical_text(text: str, font: Font) -> Image.Image:
    """``text`` rotated 90° counter-clockwise (reads bottom to top), black on transparent."""
    w, h = _text_size(font, text)
    img = Image.new("RGBA", (w + 2, h + 4), (255, 255, 255, 0))
    ImageDraw.Draw(img).text((1 - font.getbbox(text)[0], 1 - font.getbbox(text)[1]), text, fill="black", font=font)
    return img.rotate(90, expand=True)


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Font, fill: str) -> None:
    """Text whose ink box starts at ``xy`` (PIL otherwise offsets it by the font's bearing)."""
    left, top, _, _ = font.getbbox(text)
    draw.text((xy[0] - left, xy[1] - top), text, fill=fill, font=font)


def confusion_image(matrix: Tensor, class_names: Sequence[str] | None = None, size: int = 800) -> Tensor:
    """A confusion matrix ``[K, K]`` (rows = true class) as a labelled heat map, uint8 ``[H, W, 3]``.

    Args:
        matrix: Counts, rows = true class, columns = predicted class.
        class_names: Tick labels (K of them); None = ``class_<i>``.
        size: Target side of the heat map; each class gets ``max(1, size // K)`` pixels (at most
            48, at least 12 while names are shown), so 400 classes give an 800 px map.
    """
    m = matrix.detach().double().cpu()
    k = m.shape[0]
    names = [_short(str(n)) for n in (class_names if class_names is not None else [f"class_{i}" for i in range(k)])]
    named = k <= NAMED_MAX
    cell = min(MAX_CELL, max(MIN_NAMED_CELL if named else 1, size // max(1, k)))
    recall = (m / m.sum(1, keepdim=True).clamp_min(1)).numpy()  # [K, K] in [0, 1]
    font = ImageFont.load_default()
    th = _text_size(font, "Ag")[1]
    label_w = max((_text_size(font, n)[0] for n in names), default=0) if named else 0
    grid = k * cell
    x0 = PAD + th + PAD + label_w + PAD  # axis title, tick names, gap
    y0 = PAD + th + PAD  # title
    bar_x = x0 + grid + 2 * PAD
    title = f"confusion matrix: {k} classes, {int(m.sum())} videos, colour = recall"
    width = max(bar_x + BAR + PAD + _text_size(font, "1.0")[0], x0 + _text_size(font, title)[0]) + PAD
    height = y0 + grid + PAD + label_w + PAD + th + PAD
    image = Image.new("RGB", (width, height), "white")
    heat = np.repeat(np.repeat(_colour(recall), cell, axis=0), cell, axis=1)  # [grid, grid, 3]
    image.paste(Image.fromarray(heat), (x0, y0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((x0 - 1, y0 - 1, x0 + grid, y0 + grid), outline="black")
    _draw_text(draw, (x0, PAD), title, font, "black")
    _draw_text(draw, (x0 + grid // 2 - _text_size(font, "predicted")[0] // 2, height - PAD - th), "predicted", font,
               "black")  # fmt: skip
    axis = _vertical_text("true class", font)
    image.paste(axis, (PAD, y0 + grid // 2 - axis.height // 2), axis)
    if named:
        _tick_names(image, draw, names, font, (x0, y0), cell)
    if k <= COUNTS_MAX:
        _counts(draw, m, recall, font, (x0, y0), cell)
    _colour_bar(image, draw, font, (bar_x, y0), grid)
    return torch.from_numpy(np.asarray(image).copy())  # [H, W, 3] uint8


def _tick_names(
    image: Image.Image, draw: ImageDraw.ImageDraw, names: list[str], font: Font, origin: tuple[int, int], cell: int
) -> None:
    """Names right-aligned left of each row, and vertically under each column."""
    x0, y0 = origin
    grid = len(names) * cell
    for i, name in enumerate(names):
        w, h = _text_size(font, name)
        _draw_text(draw, (x0 - PAD - w, y0 + i * cell + (cell - h) // 2), name, font, "black")
        label = _vertical_text(name, font)
        image.paste(label, (x0 + i * cell + (cell - label.width) // 2, y0 + grid + PAD), label)


def _counts(
    draw: ImageDraw.ImageDraw, m: torch.Tensor, recall: np.ndarray, font: Font, origin: tuple[int, int], cell: int
) -> None:
    """Each cell's count, where it fits (white on dark cells)."""
    x0, y0 = origin
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = str(int(m[i, j]))
            w, h = _text_size(font, text)
            if w <= cell - 2 and h <= cell - 2:
                fill = "white" if recall[i, j] > 0.5 else "black"
                _draw_text(draw, (x0 + j * cell + (cell - w) // 2, y0 + i * cell + (cell - h) // 2), text, font, fill)


def _colour_bar(image: Image.Image, draw: ImageDraw.ImageDraw, font: Font, origin: tuple[int, int], grid: int) -> None:
    """A vertical recall scale beside the map: 1 at the top, 0 at the bottom."""
    x, y0 = origin
    ramp = np.linspace(1.0, 0.0, max(2, grid))[:, None].repeat(BAR, axis=1)  # [grid, BAR]
    image.paste(Image.fromarray(_colour(ramp)), (x, y0))
    draw.rectangle((x - 1, y0 - 1, x + BAR, y0 + max(2, grid)), outline="black")
    _draw_text(draw, (x + BAR + 3, y0), "1.0", font, "black")
    _draw_text(draw, (x + BAR + 3, y0 + max(2, grid) - _text_size(font, "0")[1]), "0", font, "black")
