"""The object bank: every segmented object as one RGBA sprite in a single ``[N, 4, S, S]`` tensor.

Convention (shared with :mod:`smile.data.objects`, which packs PNG folders into this layout):

- ``sprites`` is **uint8, straight (not premultiplied) alpha**, each object resized to ``S x S``
  ignoring its aspect ratio. The reference stretches every object to its box's aspect ratio
  anyway (SPEC §2.4 "Object selection and resizing" step 4), so nothing is lost for the
  reference behaviour; the original width/height ratio is kept in ``aspect`` for an optional
  aspect-preserving mode.
- The bank stays uint8 wherever it lives (``to(device)`` moves it without conversion): the full
  PIN set (60,687 objects) is ~15 GB at ``S = 256`` (~4 GB at 128) in uint8 and four times that in float.
  :meth:`ObjectBank.take` gathers the few sprites a batch needs and converts them to float.
- Premultiplication happens inside :func:`smile.motion.composite.composite`, right before the
  bilinear warp, so transparent pixels never bleed their (arbitrary) colour into the edges.

A packed bank from ``smile.data.objects.load_packed`` is backed by a memory map and pickles as
"reopen that file" (``reload``), so DataLoader workers never copy gigabytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = ["ObjectBank", "SHAPES", "TEXTURES"]

SHAPES = ("ellipse", "polygon", "star", "blob")
TEXTURES = ("flat", "stripes", "checker", "noise")


@dataclass(eq=False)
class ObjectBank:
    """RGBA sprites with names and categories.

    Attributes:
        sprites: uint8 ``[N, 4, S, S]`` (RGB + straight alpha), each object stretched to S x S.
            May be a strided view (e.g. a permuted memory map); only indexing along N is used.
        aspect: float32 ``[N]``, the object's original width / height.
        names: N unique names, ``<category>/<file>`` for packed objects.
        categories: N category names (the object's folder for packed objects).
        reload: Optional zero-argument callable rebuilding this bank (set for memory-mapped banks);
            used by pickling so that worker processes reopen the map instead of copying it.
    """

    sprites: Tensor
    aspect: Tensor
    names: list[str]
    categories: list[str]
    reload: Callable[[], ObjectBank] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = self.sprites
        if s.dtype != torch.uint8 or s.dim() != 4 or s.shape[1] != 4 or s.shape[2] != s.shape[3]:
            raise ValueError(f"ObjectBank.sprites must be uint8 [N, 4, S, S], got {s.dtype} {list(s.shape)}")
        n = s.shape[0]
        if n == 0:
            raise ValueError("ObjectBank needs at least one object")
        self.aspect = torch.as_tensor(self.aspect, dtype=torch.float32).reshape(-1)
        if self.aspect.numel() != n or len(self.names) != n or len(self.categories) != n:
            raise ValueError(
                f"ObjectBank: {n} sprites but {self.aspect.numel()} aspects, {len(self.names)} names, "
                f"{len(self.categories)} categories"
            )

    def __len__(self) -> int:
        return self.sprites.shape[0]

    def __reduce__(self):
        if self.reload is not None:
            return (_call, (self.reload,))
        return (ObjectBank, (self.sprites, self.aspect, self.names, self.categories))

    @property
    def size(self) -> int:
        """Side S of the square sprites."""
        return self.sprites.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.sprites.device

    def to(self, device: torch.device | str) -> ObjectBank:
        """The same bank with its sprites on ``device`` (still uint8; see the module docstring)."""
        device = torch.device(device)
        if device == self.sprites.device:
            return self
        return ObjectBank(self.sprites.to(device), self.aspect.to(device), self.names, self.categories)

    def take(
        self, ids: Tensor, device: torch.device | str | None = None, dtype: torch.dtype | None = torch.float32
    ) -> Tensor:
        """Sprites ``ids`` as ``[*ids.shape, 4, S, S]``.

        Gathers on the bank's device, then moves the (small) result to ``device``. With a float
        ``dtype`` (default) values are scaled to [0, 1], straight alpha; ``dtype=None`` keeps uint8.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        flat = self.sprites.index_select(0, ids.reshape(-1).to(self.sprites.device))  # [n, 4, S, S]
        out = flat.reshape(*ids.shape, *flat.shape[1:])
        if device is not None:
            out = out.to(device, non_blocking=True)
        if dtype is not None:
            out = out.to(dtype) / 255.0
        return out

    def subset(self, indices: Sequence[int]) -> ObjectBank:
        """A new in-memory bank holding only ``indices`` (in that order)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return ObjectBank(
            self.sprites.index_select(0, idx.to(self.sprites.device)).contiguous(),
            self.aspect[idx.to(self.aspect.device)],
            [self.names[i] for i in idx.tolist()],
            [self.categories[i] for i in idx.tolist()],
        )

    @classmethod
    def from_arrays(
        cls,
        rgba: np.ndarray | Tensor,
        names: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        aspect: Sequence[float] | np.ndarray | Tensor | None = None,
        layout: str = "auto",
    ) -> ObjectBank:
        """Bank from uint8 RGBA ``[N, S, S, 4]`` (``layout="nhwc"``) or ``[N, 4, S, S]`` (``"nchw"``).

        ``layout="auto"`` picks NHWC when only the last axis has 4 entries and NCHW otherwise.
        Names default to ``obj<i>``; categories to the part of the name before the last ``/``
        (empty string without one); aspect ratios to 1.
        """
        arr = torch.as_tensor(np.asarray(rgba)) if not isinstance(rgba, Tensor) else rgba
        if arr.dim() != 4 or arr.dtype != torch.uint8:
            got = f"{arr.dtype} {list(arr.shape)}"
            raise ValueError(f"from_arrays expects uint8 [N, S, S, 4] or [N, 4, S, S], got {got}")
        if layout == "auto":
            layout = "nhwc" if arr.shape[-1] == 4 and arr.shape[1] != 4 else "nchw"
        if layout == "nhwc":
            arr = arr.permute(0, 3, 1, 2)
        elif layout != "nchw":
            raise ValueError(f"layout must be 'auto', 'nhwc' or 'nchw', got {layout!r}")
        n = arr.shape[0]
        names = [f"obj{i}" for i in range(n)] if names is None else list(names)
        if categories is None:
            categories = [name.rsplit("/", 1)[0] if "/" in name else "" for name in names]
        aspect = torch.ones(n) if aspect is None else torch.as_tensor(np.asarray(aspect), dtype=torch.float32)
        return cls(arr.contiguous(), aspect, names, list(categories))

    @classmethod
    def procedural(cls, num_objects: int = 64, size: int = 64, seed: int = 0) -> ObjectBank:
        """Random textured shapes with soft alpha edges, for tests and demos (no files).

        Shapes: ellipses, convex polygons, stars and smooth blobs; textures: flat, stripes,
        checker and smooth noise, in two random colours plus a little pixel noise. Fully
        determined by ``seed`` (numpy PCG64, independent of torch's global RNG).
        """
        if num_objects < 1 or size < 4:
            raise ValueError(f"procedural bank needs num_objects >= 1 and size >= 4, got {num_objects}, {size}")
        rng = np.random.default_rng(seed)
        sprites, names, cats, aspects = [], [], [], []
        for i in range(num_objects):
            shape = SHAPES[rng.integers(len(SHAPES))]
            alpha = _shape_alpha(shape, size, rng)  # [S, S] float in [0, 1]
            rgb = _texture(TEXTURES[rng.integers(len(TEXTURES))], size, rng)  # [S, S, 3] float in [0, 1]
            rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
            sprites.append(np.round(rgba * 255.0).astype(np.uint8))
            names.append(f"{shape}/{i}")
            cats.append(shape)
            aspects.append(float(np.exp(rng.uniform(math.log(0.5), math.log(2.0)))))
        return cls.from_arrays(np.stack(sprites), names, cats, aspects, layout="nhwc")


def _call(fn: Callable[[], ObjectBank]) -> ObjectBank:
    return fn()


def _radius(shape: str, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boundary radius r(theta) in units of the half side, for a shape centred in the square."""
    if shape == "ellipse":
        a, b = rng.uniform(0.6, 0.97, size=2)
        return a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    if shape in ("polygon", "star"):
        n = int(rng.integers(3, 9)) if shape == "polygon" else int(rng.integers(5, 9))
        sector = 2 * np.pi / n
        local = np.mod(theta, sector) - sector / 2  # angle from the nearest edge normal
        r = rng.uniform(0.85, 0.97) * np.cos(sector / 2) / np.cos(local)
        if shape == "star":
            depth = rng.uniform(0.25, 0.5)
            r = r * (1 - depth * (np.abs(local) / (sector / 2)))  # dents between the corners
        return r
    # blob: a circle whose radius is perturbed by a few low harmonics
    r = np.full_like(theta, rng.uniform(0.65, 0.8))
    for k in range(2, 6):
        r = r + rng.uniform(0.0, 0.25 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.clip(r, 0.15, 0.97)


def _shape_alpha(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Soft alpha mask ``[S, S]``: 1 inside, 0 outside, a ~1.5 px linear ramp across the boundary."""
    c = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    y, x = np.meshgrid(c, c, indexing="ij")
    rho = np.hypot(x, y)
    theta = np.arctan2(y, x) + rng.uniform(0, 2 * np.pi)
    boundary = _radius(shape, np.mod(theta, 2 * np.pi), rng)
    soft = 1.5 * 2 / size  # ramp width in normalised units
    return np.clip((boundary - rho) / soft + 0.5, 0.0, 1.0)


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """RGB texture ``[S, S, 3]`` in [0, 1] mixing two random colours."""
    c1, c2 = rng.uniform(0, 1, size=(2, 3))
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if kind == "stripes":
        phi, period = rng.uniform(0, np.pi), rng.uniform(4, max(5.0, size / 3))
        mix = (np.sin(2 * np.pi * (x * np.cos(phi) + y * np.sin(phi)) / period) > 0).astype(np.float64)
    elif kind == "checker":
        cell = int(rng.integers(2, max(3, size // 4)))
        mix = ((x // cell + y // cell) % 2).astype(np.float64)
    elif kind == "noise":
        coarse = rng.uniform(0, 1, size=(6, 6))
        idx = np.linspace(0, 5, size)
        i0 = np.floor(idx).astype(int).clip(0, 4)
        f = idx - i0
        rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]  # [S, 6]
        mix = rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]  # [S, S], bilinear upsampling
    else:
        mix = np.zeros((size, size))
    rgb = c1 * (1 - mix[..., None]) + c2 * mix[..., None]
    rgb = rgb + rng.normal(0, 0.03, size=rgb.shape)
    return np.clip(rgb, 0.0, 1.0)
