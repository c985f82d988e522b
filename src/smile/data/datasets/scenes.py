"""The two procedural scenes of :class:`~smile.data.datasets.synthetic.SyntheticVideoDataset`.

The dataset decides *what* moves (a label -> direction ``angle`` and ``speed``); this module decides
*how it looks*: it draws every appearance parameter from the clip's generator and renders float
frames ``[3, T, S, S]`` in [0, 1].

- ``shapes``: textured shapes (circle, square, triangle, ellipse; stripes or checker) moving with
  the labelled velocity, each with a small direction and speed jitter, over a smooth background of
  cosine products that drifts in an unrelated direction. Positions wrap around the borders.
- ``pan``: an S x S window sliding over an upsampled smooth-noise texture with the labelled
  velocity (a camera pan), so every token carries the motion.

Appearance draws never look at the label, so single frames carry no class information.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

SCENES = ("shapes", "pan")
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


def speed_levels(n: int, scene: str = "shapes") -> np.ndarray:
    """Geometric speed ladder (fraction of img_size per frame): equal *relative* steps."""
    lo, hi = PAN_SPEED_RANGE if scene == "pan" else SPEED_RANGE
    return np.geomspace(lo, hi, n) if n > 1 else np.array([math.sqrt(lo * hi)])


def sample_scene(
    rng: np.random.Generator, scene: str, size: int, num_frames: int, num_shapes: int, angle: float, speed: float
) -> dict[str, Any]:
    """Draw a clip's scene: ``background``, ``shapes`` (shapes scene) or ``pan`` (pan scene).

    The background is drawn first in both scenes (and dropped for a pan), so the generator's
    sequence and therefore every clip stay what they were when the pan scene was added.

    Args:
        rng: The clip's own generator.
        scene: One of :data:`SCENES`.
        size: Frame side S in pixels.
        num_frames: Frames T (the pan's texture must hold the window's whole path).
        num_shapes: Shapes in a ``shapes`` scene.
        angle: Labelled direction in radians (0 = right, pi/2 = down).
        speed: Labelled speed in pixels per frame.
    """
    drift = rng.uniform(0.0, MAX_DRIFT) * size * _unit(rng.uniform(0.0, 2 * math.pi))
    background = {
        "base": rng.uniform(0.25, 0.75, 3),
        "tint": rng.uniform(-0.12, 0.12, (BG_WAVES, 3)),
        "wavelength": rng.uniform(0.25, 1.0, (2, BG_WAVES)) * size,
        "phase": rng.uniform(0.0, 2 * math.pi, (2, BG_WAVES)),
        "drift": drift,
    }
    if scene == "pan":
        return {"background": None, "shapes": [], "pan": _sample_pan(rng, size, num_frames, angle, speed)}
    shapes = [_sample_shape(rng, size, angle, speed) for _ in range(num_shapes)]
    return {"background": background, "shapes": shapes, "pan": None}


def render_scene(params: dict[str, Any], num_frames: int, size: int, masks: np.ndarray | None = None) -> np.ndarray:
    """Float frames ``[3, T, S, S]`` in [0, 1] of a scene from :func:`sample_scene`.

    Args:
        masks: Optional float32 ``[num_shapes, T, S, S]`` filled in place with each shape's own
            alpha (before occlusion by later shapes), the ground truth of where motion is.
    """
    if params["pan"] is not None:
        return _pan(params["pan"], num_frames, size)
    canvas = _background(params["background"], num_frames, size)  # [3, T, H, W] float32
    for k, shape in enumerate(params["shapes"]):
        alpha, colour, rows, cols = _shape_patch(shape, num_frames)
        _composite(canvas, alpha, colour, rows % size, cols % size, None if masks is None else masks[k])
    return canvas


def to_uint8(canvas: np.ndarray) -> torch.Tensor:
    """Float frames in [0, 1] -> uint8 tensor (rounded, clipped; ``canvas`` is reused)."""
    np.multiply(canvas, 255.0, out=canvas)
    canvas += 0.5
    return torch.from_numpy(np.clip(canvas, 0.0, 255.0, out=canvas).astype(np.uint8))


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
