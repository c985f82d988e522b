"""Procedural motion videos: the project's file-free dataset (``data=synthetic``).

Demos and tests need video whose label can only be read from *motion*, so that a linear probe
after pretraining shows that the encoder learned motion rather than appearance. Two scenes:

- ``shapes`` (default): textured shapes move together in the labelled direction and speed over a
  smooth background that drifts in an unrelated direction. Positions live on a torus (shapes wrap
  around the borders).
- ``pan``: a camera pans over a random smooth-noise texture in the labelled direction and speed, so
  every token carries the motion. This is the demo's scene: a tiny encoder pretrained for a few
  minutes on the CPU shows the motion it learned under a linear probe (README, "The demo").

In both, colours, shapes and textures are drawn from a stream that never looks at the label, so
every single frame has the same appearance statistics for every class.

Determinism: clip ``index`` of split ``split`` is rendered from
``numpy.random.default_rng([seed, crc32(split), 0, index])`` only, so it is byte-identical across
instances, call orders, DataLoader workers and processes. Labels are stratified in blocks of
``num_classes`` consecutive indices (each block is a permutation drawn from
``default_rng([seed, crc32(split), 1, block])``), so any ``num_samples`` is balanced within one
clip per class and a clip never depends on ``num_samples``.
"""

from __future__ import annotations

import math
import operator
import zlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
SHAPES = ("circle", "square", "triangle", "ellipse")
TEXTURES = ("stripes", "checker")
SPEED_RANGE = (0.02, 0.05)  # slowest / fastest class, fraction of img_size per frame
SIZE_RANGE = (0.15, 0.35)  # circumscribed diameter, fraction of img_size
JITTER_DEG = 15.0  # per-shape direction jitter, so the task is not a lookup
JITTER_SPEED = 0.15  # per-shape relative speed jitter
MAX_DRIFT = 0.008  # background drift, fraction of img_size per frame (camera-like, slow)
BG_WAVES = 3  # separable cosine products that make up the background texture
PAN_SPEED_RANGE = (1 / 32, 2 / 32)  # camera speed levels of the pan scene, fraction of img_size per frame
PAN_GRAIN = 2 / 32  # noise grain of the pan texture, fraction of img_size
PAN_JITTER_DEG = 10.0  # per-clip direction jitter of the pan
SCENES = ("shapes", "pan")
_COMPASS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


def split_id(split: str) -> int:
    """Stable split number (CRC32 of the name): Python's ``hash`` differs between processes."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return zlib.crc32(split.encode())


def direction_names(n: int) -> list[str]:
    """Compass names where they exist (angle 0 = right, 90 = down in image coordinates)."""
    if 8 % n == 0:
        return [_COMPASS[i * 8 // n] for i in range(n)]
    return [f"{round(360 * i / n)}deg" for i in range(n)]


def speed_names(n: int) -> list[str]:
    """Readable speed level names, slowest first."""
    return {1: ["any"], 2: ["slow", "fast"], 3: ["slow", "medium", "fast"]}.get(n, [f"speed{i}" for i in range(n)])


def speed_levels(n: int, scene: str = "shapes") -> np.ndarray:
    """Geometric speed ladder (fraction of img_size per frame): equal *relative* steps."""
    lo, hi = PAN_SPEED_RANGE if scene == "pan" else SPEED_RANGE
    return np.geomspace(lo, hi, n) if n > 1 else np.array([math.sqrt(lo * hi)])


class SyntheticMotionDataset(Dataset):
    """Textured shapes moving over a drifting textured background; label = motion class.

    Args:
        num_samples: Number of clips (the dataset length).
        num_frames: Frames per clip (T).
        img_size: Height and width in pixels (H = W).
        seed: Base seed; with ``split`` and the index it fixes a clip completely.
        num_directions: Evenly spaced directions; 4 gives right, down, left, up.
        num_speeds: Speed levels between ``SPEED_RANGE`` (geometric).
        num_shapes: Foreground shapes per clip, all sharing the labelled motion (with jitter);
            ``shapes`` scene only.
        split: ``"train"``, ``"val"`` or ``"test"``; each has its own seed stream.
        scene: ``"shapes"`` (moving shapes) or ``"pan"`` (camera pan over a noise texture).

    Items are dicts ``video`` (uint8 ``[3, T, H, W]``), ``label`` and ``index`` (int64 scalars).
    The label is ``direction_index * num_speeds + speed_index``.
    """

    def __init__(
        self,
        num_samples: int = 512,
        num_frames: int = 16,
        img_size: int = 224,
        seed: int = 0,
        num_directions: int = 4,
        num_speeds: int = 2,
        num_shapes: int = 2,
        split: str = "train",
        scene: str = "shapes",
    ) -> None:
        for name, value, low in (
            ("num_samples", num_samples, 1),
            ("num_frames", num_frames, 2),
            ("img_size", img_size, 16),
            ("seed", seed, 0),
            ("num_directions", num_directions, 1),
            ("num_speeds", num_speeds, 1),
            ("num_shapes", num_shapes, 1),
        ):
            if int(value) < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
        self.scene = scene
        self._split_id = split_id(split)
        self.num_samples, self.num_frames, self.img_size = int(num_samples), int(num_frames), int(img_size)
        self.seed, self.split = int(seed), split
        self.num_directions, self.num_speeds, self.num_shapes = num_directions, num_speeds, num_shapes

    def __len__(self) -> int:
        return self.num_samples

    @property
    def num_classes(self) -> int:
        return self.num_directions * self.num_speeds

    @property
    def class_names(self) -> list[str]:
        """Names like ``"right-slow"``, in label order."""
        speeds = speed_names(self.num_speeds)
        return [d if self.num_speeds == 1 else f"{d}-{s}" for d in direction_names(self.num_directions) for s in speeds]

    def _check_index(self, index: int) -> int:
        index = operator.index(index)
        if index < 0:
            index += self.num_samples
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} clips")
        return index

    def label_of(self, index: int) -> int:
        """Label without rendering (stratified blocks, see module docstring)."""
        index = self._check_index(index)
        block, pos = divmod(index, self.num_classes)
        perm = np.random.default_rng([self.seed, self._split_id, 1, block]).permutation(self.num_classes)
        return int(perm[pos])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = self._check_index(index)
        video = self.render(index)
        return {
            "video": video,
            "label": torch.tensor(self.label_of(index), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def describe(self, index: int) -> dict[str, Any]:
        """The sampled parameters of clip ``index`` as plain Python values, for debugging and tests."""
        params = self._sample(self._check_index(index))
        return _to_python(params)

    def render(self, index: int, return_masks: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Render clip ``index``; optionally also each shape's own coverage (before occlusion).

        Returns:
            video uint8 ``[3, T, H, W]``, and with ``return_masks`` float32 alpha ``[S, T, H, W]``
            (S = num_shapes), which tests use as ground truth for the motion.
        """
        p = self._sample(self._check_index(index))
        T, S = self.num_frames, self.img_size
        if self.scene == "pan":
            if return_masks:
                raise ValueError("return_masks needs scene='shapes' (a pan has no shapes)")
            return _to_uint8(_pan(p["pan"], T, S))
        canvas = _background(p["background"], T, S)  # [3, T, H, W] float32
        masks = np.zeros((self.num_shapes, T, S, S), np.float32) if return_masks else None
        for k, shape in enumerate(p["shapes"]):
            alpha, colour, rows, cols = _shape_patch(shape, T)
            _composite(canvas, alpha, colour, rows % S, cols % S, None if masks is None else masks[k])
        video = _to_uint8(canvas)
        return (video, torch.from_numpy(masks)) if return_masks else video

    def _sample(self, index: int) -> dict[str, Any]:
        """Draw every parameter from the per-clip stream; the label only steers the velocities."""
        rng = np.random.default_rng([self.seed, self._split_id, 0, index])
        label = self.label_of(index)
        d, s = divmod(label, self.num_speeds)
        S = self.img_size
        drift = rng.uniform(0.0, MAX_DRIFT) * S * _unit(rng.uniform(0.0, 2 * math.pi))
        background = {
            "base": rng.uniform(0.25, 0.75, 3),
            "tint": rng.uniform(-0.12, 0.12, (BG_WAVES, 3)),
            "wavelength": rng.uniform(0.25, 1.0, (2, BG_WAVES)) * S,
            "phase": rng.uniform(0.0, 2 * math.pi, (2, BG_WAVES)),
            "drift": drift,
        }
        angle = 2 * math.pi * d / self.num_directions
        speed = float(speed_levels(self.num_speeds, self.scene)[s]) * S
        if self.scene == "pan":
            shapes, background = [], None
            pan = _sample_pan(rng, S, self.num_frames, angle, speed)
        else:
            shapes = [_sample_shape(rng, S, angle, speed) for _ in range(self.num_shapes)]
            pan = None
        return {
            "index": index,
            "label": label,
            "class_name": self.class_names[label],
            "direction_index": d,
            "speed_index": s,
            "angle_deg": math.degrees(angle),
            "speed_px": speed,
            "background": background,
            "shapes": shapes,
            "pan": pan,
        }


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _sample_shape(rng: np.random.Generator, S: int, angle: float, speed: float) -> dict[str, Any]:
    """One shape; appearance draws come before and independently of the motion jitter."""
    radius = float(rng.uniform(*SIZE_RANGE)) * S / 2  # python floats keep the maths in float32
    shape = {
        "kind": SHAPES[rng.integers(len(SHAPES))],
        "radius": radius,
        "aspect": float(rng.uniform(0.45, 0.8)),
        "orientation": float(rng.uniform(0.0, 2 * math.pi)),
        "colour": rng.uniform(0.0, 1.0, 3),
        "shade": float(rng.uniform(0.25, 0.7)),
        "texture": TEXTURES[rng.integers(len(TEXTURES))],
        "period": max(3.0, float(rng.uniform(0.3, 0.7)) * 2 * radius),
        "texture_phase": rng.uniform(0.0, 2 * math.pi, 2),
        "start": rng.uniform(0.0, S, 2),
    }
    jitter_angle = angle + math.radians(rng.uniform(-JITTER_DEG, JITTER_DEG))
    jitter_speed = speed * rng.uniform(1 - JITTER_SPEED, 1 + JITTER_SPEED)
    shape["velocity"] = jitter_speed * _unit(jitter_angle)  # px per frame, (x, y)
    return shape


def _sample_pan(rng: np.random.Generator, S: int, T: int, angle: float, speed: float) -> dict[str, Any]:
    """Camera pan: a noise texture (drawn first, label-free) and the window's velocity."""
    grain = max(1, round(PAN_GRAIN * S))
    max_speed = PAN_SPEED_RANGE[1] * S
    side = S + int(math.ceil(max_speed * T)) + 2 * grain + 2  # room for the window's whole path
    cells = side // grain + 3
    noise = rng.standard_normal((3, cells, cells)).astype(np.float32)
    base = rng.uniform(0.3, 0.7, 3).astype(np.float32)
    jitter = math.radians(rng.uniform(-PAN_JITTER_DEG, PAN_JITTER_DEG))
    return {"noise": noise, "grain": grain, "side": side, "base": base, "velocity": speed * _unit(angle + jitter)}


def _pan(pan: dict[str, Any], T: int, S: int) -> np.ndarray:
    """Frames ``[3, T, S, S]`` in [0, 1]: an S x S window sliding over the upsampled noise texture."""
    noise, grain, side = torch.from_numpy(pan["noise"])[None], pan["grain"], pan["side"]
    tex = torch.nn.functional.interpolate(noise, scale_factor=grain, mode="bicubic", align_corners=False)[0]
    tex = (0.25 * tex[:, :side, :side]).numpy() + pan["base"][:, None, None]  # [3, side, side]
    vx, vy = pan["velocity"]
    x0, y0 = (side - S) / 2 - vx * (T - 1) / 2, (side - S) / 2 - vy * (T - 1) / 2  # path centred in the texture
    frames = []
    for t in range(T):
        r, c = int(round(y0 + vy * t)), int(round(x0 + vx * t))
        frames.append(tex[:, r : r + S, c : c + S])
    return np.stack(frames, axis=1)  # [3, T, S, S]


def _to_uint8(canvas: np.ndarray) -> torch.Tensor:
    """Float frames in [0, 1] -> uint8 tensor (rounded, clipped; ``canvas`` is reused)."""
    np.multiply(canvas, 255.0, out=canvas)
    canvas += 0.5
    return torch.from_numpy(np.clip(canvas, 0.0, 255.0, out=canvas).astype(np.uint8))


def _background(bg: dict[str, Any], T: int, S: int) -> np.ndarray:
    """Tinted sum of separable cosine products, translated by the drift each frame.

    A product ``cos(x) cos(y)`` per wave lets one batched matmul build all frames cheaply.
    """
    t = np.arange(T)[:, None, None]
    grid = np.arange(S)[None, None, :]
    k = 2 * math.pi / bg["wavelength"]  # [2, K]
    drift = bg["drift"]
    gx = np.cos(k[0][None, :, None] * (grid - drift[0] * t) + bg["phase"][0][None, :, None])  # [T, K, W]
    gy = np.cos(k[1][None, :, None] * (grid - drift[1] * t) + bg["phase"][1][None, :, None])  # [T, K, H]
    gx = gx.astype(np.float32)[None] * bg["tint"].T.astype(np.float32)[:, None, :, None]  # [3, T, K, W]
    canvas = np.matmul(gy.astype(np.float32).transpose(0, 2, 1)[None], gx)  # [3, T, H, W]
    canvas += bg["base"].astype(np.float32)[:, None, None, None]
    return canvas


def _shape_patch(shape: dict[str, Any], T: int) -> tuple[np.ndarray, ...]:
    """Alpha ``[T, b, b]`` and colour ``[3, T, b, b]`` in a box that follows the shape.

    Only a box around the shape is evaluated, which keeps big clips fast; the box's pixel rows and
    cols ``[T, b]`` are returned unwrapped (the caller wraps them on the torus).
    """
    r = shape["radius"]
    b = int(math.ceil(2 * r)) + 3
    centre = shape["start"][:, None] + shape["velocity"][:, None] * np.arange(T)[None]  # [2, T]
    origin = np.floor(centre - r).astype(np.int64) - 1  # [2, T]
    pix = origin[:, :, None] + np.arange(b)[None, None]  # [2, T, b]
    local = (pix - centre[:, :, None]).astype(np.float32)  # [2, T, b]
    c, s = math.cos(shape["orientation"]), math.sin(shape["orientation"])
    lx, ly = local[0][:, None, :], local[1][:, :, None]
    u, v = c * lx + s * ly, c * ly - s * lx  # [T, b, b], shape frame
    alpha = np.clip(0.5 - _sdf(shape, u, v), 0.0, 1.0)
    tex = _texture(shape, u, v)
    colour = np.asarray(shape["colour"], np.float32)[:, None, None, None]
    colour = colour * (shape["shade"] + (1.0 - shape["shade"]) * tex)[None]  # [3, T, b, b]
    return alpha, colour, pix[1], pix[0]


def _sdf(shape: dict[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance in pixels (approximate for the ellipse): clipping it anti-aliases edges."""
    r, kind = shape["radius"], shape["kind"]
    if kind == "circle":
        return np.hypot(u, v) - r
    if kind == "ellipse":
        minor = r * shape["aspect"]
        return (np.hypot(u / r, v / minor) - 1.0) * minor
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) - r / math.sqrt(2)
    edges = [math.pi / 2 + 2 * math.pi * i / 3 for i in range(3)]  # equilateral triangle
    dist = [math.cos(a) * u + math.sin(a) * v for a in edges]
    return np.maximum(np.maximum(dist[0], dist[1]), dist[2]) - r / 2


def _texture(shape: dict[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Stripes or a soft checker in the shape's frame, so the texture moves with the shape."""
    f = 2 * math.pi / shape["period"]
    pu, pv = (float(p) for p in shape["texture_phase"])
    wave = np.sin(f * u + pu)
    if shape["texture"] == "checker":
        wave = np.clip(4.0 * wave * np.sin(f * v + pv), -1.0, 1.0)
    return 0.5 + 0.5 * wave


def _composite(
    canvas: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    mask: np.ndarray | None,
) -> None:
    """Alpha-blend a box into ``canvas`` ``[3, T, H, W]`` in place; box < image, so no index repeats."""
    t = np.arange(alpha.shape[0])[:, None, None]
    r, c = rows[:, :, None], cols[:, None, :]
    patch = canvas[:, t, r, c]  # [3, T, b, b]
    canvas[:, t, r, c] = patch + alpha[None] * (colour - patch)
    if mask is not None:
        mask[t, r, c] = alpha


def _to_python(value: Any) -> Any:
    """Numpy containers to plain Python, so ``describe`` output prints and compares cleanly."""
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value
