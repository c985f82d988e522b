"""RandAugment and random erasing of clips (SPEC §7.1.1, §7.1.5).

RandAugment and per-frame erasing are timm's; the reference's cube erasing (the default) is written
here, since timm has no cube mode. timm draws from Python's, NumPy's and torch's global RNGs; every
transform here draws one seed from the item's ``numpy.random.Generator`` and seeds (then restores)
those globals around timm's call, or draws from that generator and a seeded ``torch.Generator``
directly, so augmentations are a pure function of (seed, index, epoch).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp

from smile.data.transforms.common import _check_4d, _check_frames

RAND_AUGMENT = "rand-m7-n4-mstd0.5-inc1"
RAND_AUGMENT_FILL = (128, 128, 128)  # the reference never passes img_mean: timm's default grey fill


@contextmanager
def _seeded_global_rngs(seed: int, with_torch: bool = False) -> Iterator[None]:
    """Seed Python's, NumPy's (and torch's CPU) global RNGs, restoring their states afterwards.

    timm's RandAugment and RandomErasing draw from these globals; seeding them from the item's own
    generator makes augmentations a pure function of (seed, index, epoch), and restoring the
    states keeps the rest of the process unaffected. Not thread-safe (DataLoader workers are
    processes).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        if with_torch:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**32))


class ClipRandAugment:
    """timm's RandAugment with the same ops and magnitudes on every frame of a clip (SPEC §7.1.1).

    How frames stay consistent: one seed is drawn per clip, and Python's and NumPy's global RNGs
    (the only randomness timm's RandAugment uses: op choice, apply-or-skip, magnitude noise, sign)
    are reset to it before each frame. timm's draws never depend on pixel values, so every frame
    gets the identical op list with identical arguments, which is what the reference's video
    copy of RandAugment does by drawing once and mapping the ops over the frame list.

    Args:
        config_str: timm RandAugment string; the reference's is ``rand-m7-n4-mstd0.5-inc1``.
        img_size: Training crop side; translations use ``int(0.45 * img_size)`` (the relative
            ``TranslateXRel/YRel`` ops of the increasing set use 45 % of the frame in any case).
        interpolation: Resampling of the geometric ops (reference: bicubic).
        fill: Colour of pixels uncovered by geometric ops.
    """

    def __init__(
        self,
        config_str: str = RAND_AUGMENT,
        img_size: int = 224,
        interpolation: str = "bicubic",
        fill: Sequence[int] = RAND_AUGMENT_FILL,
    ) -> None:
        self.config_str = config_str
        hparams = {
            "translate_const": int(img_size * 0.45),
            "img_mean": tuple(int(v) for v in fill),
            "interpolation": str_to_pil_interp(interpolation),
        }
        self.augment = rand_augment_transform(config_str, hparams)

    def __call__(self, frames: torch.Tensor | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, H, W, 3]``, one seed drawn from ``rng``."""
        _check_frames(frames)
        arr = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        seed = _draw_seed(rng)
        out = np.empty_like(arr)
        for t, frame in enumerate(arr):
            with _seeded_global_rngs(seed):
                out[t] = np.asarray(self.augment(Image.fromarray(frame)))
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config_str!r})"


ERASE_MODES = ("pixel", "rand", "const")
CUBE_ATTEMPTS = 100  # the reference's cube mode tries 100 boxes (timm's per-image mode: 10)


class ClipRandomErasing:
    """Random erasing of a normalised clip (SPEC §7.1.5), as a cube (the reference) or per frame.

    ``cube=True`` (the reference's video random erasing, its default): one draw decides whether
    the clip is erased (probability ``prob``); then ``n`` boxes (``n`` uniform in ``1..count``,
    timm's ``min_count=1, max_count=count``) are drawn like timm's (area 0.02-1/3 of the frame
    divided by ``n``, log-uniform aspect 0.3-1/0.3, up to 100 tries each, the first that fits
    wins) and each box is erased at the same place in every frame. Fills, drawn afresh for every
    frame as the reference's per-frame fill call does: ``pixel`` = per-pixel N(0, 1), ``rand`` =
    one N(0, 1) colour per channel, ``const`` = 0. The draws are vectorised: the tries of a box
    in one NumPy call, the fill of all frames in one torch call.

    ``cube=False``: timm's RandomErasing on the frames as a batch ``[T, 3, H, W]``, so each frame is
    erased (or not) with its own probability and box (P(some frame erased) ~ 0.99 for 16 frames).

    The reference passes ``num_splits=count``, which with ``count > 1`` leaves the first
    ``T // count`` frames untouched; here every frame is erased (identical for the default count 1).

    Args:
        prob: Probability of erasing the clip (``cube``) or each frame (per frame).
        mode: Fill: ``"pixel"``, ``"rand"`` or ``"const"``.
        count: Largest number of boxes.
        cube: The same boxes in every frame (reference) instead of independent frames.
    """

    def __init__(self, prob: float = 0.25, mode: str = "pixel", count: int = 1, cube: bool = True) -> None:
        if mode not in ERASE_MODES:
            raise ValueError(f"random erasing mode (remode) must be one of {ERASE_MODES}, got {mode!r}")
        if not 0.0 <= prob <= 1.0 or count < 1:
            raise ValueError(
                f"random erasing needs 0 <= prob (reprob) <= 1 and count (recount) >= 1, got {prob}, {count}"
            )
        self.prob, self.mode, self.count, self.cube = float(prob), mode, int(count), bool(cube)
        self.area, self.log_aspect = (0.02, 1 / 3), (np.log(0.3), np.log(1 / 0.3))
        self.eraser = RandomErasing(probability=self.prob, mode=mode, max_count=self.count, num_splits=0, device="cpu")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Float CPU ``[3, T, H, W]`` (normalised) -> the same tensor, erased in place."""
        _check_4d(clip, type(self).__name__)
        if self.cube:
            return self._erase_cube(clip, rng)
        with _seeded_global_rngs(_draw_seed(rng), with_torch=True):
            self.eraser(clip.permute(1, 0, 2, 3))  # [T, 3, H, W] view: frames as a batch
        return clip

    def sample_boxes(self, height: int, width: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
        """``(top, left, h, w)`` of each box of one erased clip (a box whose 100 tries all miss is dropped)."""
        n = self.count if self.count == 1 else int(rng.integers(1, self.count + 1))
        boxes = []
        for _ in range(n):
            target = rng.uniform(*self.area, CUBE_ATTEMPTS) * height * width / n  # [tries]
            aspect = np.exp(rng.uniform(*self.log_aspect, CUBE_ATTEMPTS))
            hs = np.rint(np.sqrt(target * aspect)).astype(np.int64)  # round half to even, as Python's round
            ws = np.rint(np.sqrt(target / aspect)).astype(np.int64)
            fits = np.flatnonzero((hs < height) & (ws < width))
            if fits.size:
                h, w = int(hs[fits[0]]), int(ws[fits[0]])
                boxes.append((int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w))
        return boxes

    def _erase_cube(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if rng.random() >= self.prob:
            return clip
        c, t, height, width = clip.shape
        gen = torch.Generator().manual_seed(_draw_seed(rng))  # fills: independent of torch's global RNG
        for top, left, h, w in self.sample_boxes(height, width, rng):
            clip[:, :, top : top + h, left : left + w] = self._fill((c, t, h, w), gen, clip.dtype)
        return clip

    def _fill(self, shape: tuple[int, int, int, int], gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """The box's content for every frame: ``[C, T, h, w]`` or broadcastable ``[C, T, 1, 1]``."""
        if self.mode == "pixel":
            return torch.randn(shape, generator=gen, dtype=dtype)
        if self.mode == "rand":
            return torch.randn((*shape[:2], 1, 1), generator=gen, dtype=dtype)
        return torch.zeros((*shape[:2], 1, 1), dtype=dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob={self.prob}, mode={self.mode!r}, count={self.count}, cube={self.cube})"
