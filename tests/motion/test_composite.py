"""Compositing geometry, paste order and blending; SyntheticMotion; background modes."""

from __future__ import annotations

import importlib
import math
import time

import pytest
import torch
import torch.nn.functional as F

from smile.motion import (
    NO_OBJECT,
    Motion,
    ObjectBank,
    SyntheticMotion,
    apply_background,
    boxes_in_frame,
    composite,
    cpu_generator,
    placement_theta,
    sample_trajectories,
)
from smile.motion.warp import premultiply, region_grid


def one(box, angle=0.0, t=1):
    """boxes [1, 1, T, 4] and angles [1, 1, T] for a single static object."""
    return torch.tensor(box, dtype=torch.float32).view(1, 1, 1, 4).expand(1, 1, t, 4), torch.full((1, 1, t), angle)


def sprite(rgb=(1.0, 1.0, 1.0), alpha=1.0, size=16):
    s = torch.empty(1, 1, 4, size, size)
    s[:, :, :3] = torch.tensor(rgb).view(1, 1, 3, 1, 1)
    s[:, :, 3] = alpha
    return s


def coverage(spr, boxes, angles, hw=(32, 32)):
    video = torch.zeros(spr.shape[0], 3, boxes.shape[2], *hw)
    return composite(video, spr, boxes, angles, return_alpha=True)[1]  # [B, K, T, H, W]


def test_opaque_square_fills_exactly_its_box():
    boxes, angles = one((8, 8, 24, 24))
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[8:24, 8:24] = True
    for size in (16, 64):  # same resolution (exact), and a 4x downscale
        out = composite(torch.zeros(1, 3, 1, 32, 32), sprite(size=size), boxes, angles)[0, :, 0]
        assert torch.allclose(out[:, inside], torch.ones(()), atol=1e-5)
        edge = F.max_pool2d(inside[None].float(), 3, 1, 1)[0].bool()  # the box plus a 1-px ring
        assert torch.allclose(out[:, ~edge], torch.zeros(()), atol=1e-6)


def test_region_grid_over_the_whole_frame_matches_torch_affine_grid():
    gen = torch.Generator().manual_seed(0)
    x1y1 = torch.rand(5, 2, generator=gen) * 40 - 10
    boxes = torch.cat([x1y1, x1y1 + 4 + torch.rand(5, 2, generator=gen) * 30], -1)
    theta = placement_theta(boxes, torch.randn(5, generator=gen) * 40, (24, 40))
    ref = F.affine_grid(theta, [5, 1, 24, 40], align_corners=False)  # [5, 24, 40, 2]
    origin = torch.zeros(5, 2, dtype=torch.long)  # canvas = the frame, from its top-left pixel
    assert torch.allclose(region_grid(theta, origin, (24, 40), (24, 40)), ref, atol=1e-5)
    shifted = region_grid(theta, origin + torch.tensor([3, 7]), (10, 12), (24, 40))  # a 10x12 window at (3, 7)
    assert torch.allclose(shifted, ref[:, 3:13, 7:19], atol=1e-5)


def test_quarter_turn_swaps_extent():
    boxes, _ = one((6, 12, 26, 20))  # 20 wide, 8 tall, centred at (16, 16)
    for angle, (rows, cols) in [(0.0, (8, 20)), (90.0, (20, 8)), (-90.0, (20, 8))]:
        cov = coverage(sprite(), boxes, torch.full((1, 1, 1), angle))[0, 0, 0] > 0.5
        assert (cov.any(1).sum().item(), cov.any(0).sum().item()) == (rows, cols)


def test_positive_angle_is_clockwise_on_screen():
    """A marker on the sprite's right (+x) half turns towards +y (down) for positive angles."""
    spr = sprite(size=16)
    spr[:, :, 3, :, :8] = 0  # only the right half is opaque
    boxes, _ = one((6, 6, 26, 26))  # centred at (16, 16)
    ys, xs = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    for angle in (30.0, 90.0, -45.0):
        a = coverage(spr, boxes, torch.full((1, 1, 1), angle))[0, 0, 0]
        cx, cy = (a * xs).sum() / a.sum() - 16, (a * ys).sum() / a.sum() - 16
        assert math.degrees(math.atan2(cy, cx)) == pytest.approx(angle, abs=1.0)


def test_half_alpha_blends_to_the_mean():
    boxes, angles = one((4, 4, 28, 28))
    video = torch.full((1, 3, 1, 32, 32), 0.2)
    out = composite(video, sprite(rgb=(0.8, 0.8, 0.8), alpha=0.5), boxes, angles)
    assert torch.allclose(out[..., 6:26, 6:26], torch.full((), 0.5), atol=1e-6)
    assert torch.equal(video, torch.full((1, 3, 1, 32, 32), 0.2))  # input untouched (not inplace)


def test_small_object_pasted_on_top_per_sample():
    red, green = sprite(rgb=(1, 0, 0)), sprite(rgb=(0, 1, 0))
    big, small = (2, 2, 30, 30), (12, 12, 20, 20)
    # sample 0: small object first (k=0); sample 1: big object first
    sprites = torch.stack([torch.cat([green, red], 1)[0], torch.cat([red, green], 1)[0]])  # [2, 2, 4, S, S]
    boxes = torch.tensor([[small, big], [big, small]], dtype=torch.float32)[:, :, None].expand(2, 2, 3, 4)
    out = composite(torch.zeros(2, 3, 3, 32, 32), sprites, boxes, torch.zeros(2, 2, 3))
    centre, rim = out[:, :, :, 16, 16], out[:, :, :, 4, 4]  # [B, 3, T]
    assert torch.allclose(centre, torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1).expand(2, 3, 3))
    assert torch.allclose(rim, torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1).expand(2, 3, 3))


def test_objects_leaving_the_frame_are_clipped():
    boxes = torch.tensor([[-10, -10, 10, 10], [20, 25, 60, 45], [NO_OBJECT] * 4], dtype=torch.float32)
    boxes = boxes.view(1, 3, 1, 4)
    spr = torch.cat([sprite(), sprite(), sprite()], 1)
    out, alpha = composite(torch.zeros(1, 3, 1, 32, 32), spr, boxes, torch.full((1, 3, 1), 20.0), return_alpha=True)
    assert out.shape == (1, 3, 1, 32, 32) and out.min() >= 0 and out.max() <= 1 + 1e-6
    assert alpha[0, 0, 0, :5, :5].min() > 0.99 and alpha[0, 1, 0, 30:, 30:].min() > 0.99
    assert alpha[0, 2].abs().max() == 0
    assert boxes_in_frame(boxes, (32, 32)).view(-1).tolist() == [True, True, False]


def test_antialias_averages_fine_texture():
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2).float()
    spr = sprite(size=64)
    spr[:, :, :3] = checker
    boxes, angles = one((8, 8, 16, 16))  # 64 px shrunk to 8 px
    out = composite(torch.zeros(1, 3, 1, 32, 32), spr, boxes, angles)[0, 0, 0, 9:15, 9:15]
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.05)


# ------------------------------------------------------------------------------ SyntheticMotion


@pytest.fixture(scope="module")
def bank():
    return ObjectBank.procedural(num_objects=16, size=32, seed=0)


def test_boxes_are_the_generators_trajectories(bank):
    video = torch.rand(3, 3, 4, 48, 40)
    out, boxes = SyntheticMotion(bank)(video, generator=torch.Generator().manual_seed(5))
    expected, _ = sample_trajectories(3, 4, (48, 40), generator=torch.Generator().manual_seed(5))
    assert torch.equal(boxes, expected) and boxes.shape == (3, 2, 4, 4)
    assert out.shape == video.shape and not torch.equal(out, video)
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_same_seed_same_result(bank):
    motion = SyntheticMotion(bank, trajectory={"num_objects": 3}, background="noise")
    video = torch.rand(2, 3, 4, 32, 32)
    a = motion(video, generator=torch.Generator().manual_seed(1))
    b = motion(video, generator=torch.Generator().manual_seed(1))
    c = motion(video, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].shape[1] == 3
    assert not torch.equal(a[0], c[0])


def test_p_zero_leaves_video_unchanged(bank):
    video = torch.rand(4, 3, 4, 32, 32)
    out, boxes = SyntheticMotion(bank, p=0.0)(video, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, video) and out is not video
    assert (boxes == NO_OBJECT).all() and not boxes_in_frame(boxes, (32, 32)).any()


def test_p_half_mixes_clips(bank):
    video = torch.rand(32, 3, 2, 32, 32)
    out, boxes = SyntheticMotion(bank, p=0.5)(video, generator=torch.Generator().manual_seed(0))
    absent = (boxes == NO_OBJECT).flatten(1).all(1)
    assert 4 < absent.sum() < 28
    assert torch.equal(out[absent], video[absent]) and not torch.equal(out[~absent], video[~absent])


def overlay_coverage(motion, video, seed):
    """Total object coverage [B, T, H, W] of what ``motion(video, seed)`` pasted."""
    b, _, t, h, w = video.shape
    params = motion.sample(b, t, (h, w), generator=torch.Generator().manual_seed(seed))
    spr = motion.bank.take(params.sprite_ids)
    _, alpha = composite(video, spr, params.boxes, params.angles, return_alpha=True)
    return alpha.sum(1)


def test_black_background_is_zero_outside_objects(bank):
    motion = SyntheticMotion(bank, background="black")
    video = torch.rand(2, 3, 4, 32, 32)
    out, _ = motion(video, generator=torch.Generator().manual_seed(3))
    cov = overlay_coverage(motion, video, seed=3)[:, None].expand_as(out)
    assert (out[cov == 0] == 0).all() and (out[cov > 0.5] > 0).any()


def test_static_frame_background(bank):
    video = torch.rand(3, 3, 5, 16, 16)
    out = apply_background(video, "video_frame_static", torch.Generator().manual_seed(0))
    assert torch.equal(out, out[:, :, :1].expand_as(out))
    for b in range(3):  # the static frame is one of the clip's frames
        assert any(torch.equal(out[b, :, 0], video[b, :, j]) for j in range(5))
    moving, _ = SyntheticMotion(bank, background="video_frame_static")(video, torch.Generator().manual_seed(0))
    assert not torch.equal(moving[:, :, 0], moving[:, :, -1])  # the objects still move


def test_noise_backgrounds():
    video = torch.zeros(2, 3, 4, 16, 16)
    noise = apply_background(video, "noise", torch.Generator().manual_seed(0))
    assert not torch.equal(noise[:, :, 0], noise[:, :, 1]) and 0 <= noise.min() and noise.max() < 1
    assert noise.mean().item() == pytest.approx(0.5, abs=0.05)
    static = apply_background(video, "noise_static", torch.Generator().manual_seed(0))
    assert torch.equal(static, static[:, :, :1].expand_as(static)) and static.std() > 0.2
    again = apply_background(video, "noise", torch.Generator().manual_seed(0))
    assert torch.equal(noise, again)


def test_image_background():
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    rgba = torch.cat([colours, torch.full((3, 1), 255, dtype=torch.uint8)], 1)[:, :, None, None].expand(3, 4, 8, 8)
    images = ObjectBank.from_arrays(rgba.contiguous(), layout="nchw")
    video = torch.rand(6, 3, 3, 12, 20)
    for bank_or_tensor in (images, colours[:, :, None, None].expand(3, 3, 8, 8)):
        out = apply_background(video, "image", torch.Generator().manual_seed(0), images=bank_or_tensor)
        assert out.shape == video.shape
        first = out[:, :, 0, 0, 0]  # [B, 3]
        assert torch.equal(out, first[:, :, None, None, None].expand_as(out))  # flat, static
        assert all(any(torch.equal(f, c.float() / 255) for c in colours) for f in first)


def test_unknown_background_names_the_option(bank):
    with pytest.raises(ValueError, match="background"):
        apply_background(torch.zeros(1, 3, 2, 8, 8), "sky")
    with pytest.raises(ValueError, match="background"):
        SyntheticMotion(bank, background="sky")
    with pytest.raises(ValueError, match="background_images"):
        SyntheticMotion(bank, background="image")


def test_synthetic_motion_is_the_motion_protocol_and_sample_then_apply_equals_call(bank):
    motion = SyntheticMotion(bank)
    assert isinstance(motion, Motion) and not isinstance(object(), Motion)
    video = torch.rand(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    params = motion.sample(3, 4, (32, 32), generator=torch.Generator().manual_seed(2))
    assert params.boxes.shape == (3, 2, 4, 4) and params.sprite_ids.shape == (3, 2) and params.present.all()
    assert torch.equal(params.select(slice(1, None, 2)).boxes, params.boxes[1::2])
    gen = torch.Generator().manual_seed(2)
    out, boxes = motion(video, generator=gen)
    assert torch.equal(boxes, params.boxes)  # the call is sample + apply from one stream
    again = motion.apply(video, params, generator=torch.Generator().manual_seed(9))
    assert torch.equal(out, again) and not torch.equal(out, video)


def test_cpu_generator_passthrough():
    g = torch.Generator().manual_seed(0)
    assert cpu_generator(g) is g and cpu_generator(None) is None


# ------------------------------------------------------------------------------ device parity, speed


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bank):
    video = torch.rand(4, 3, 8, 64, 64)
    motion = SyntheticMotion(bank)
    cpu_out, cpu_boxes = motion(video, generator=torch.Generator().manual_seed(0))
    gpu_out, gpu_boxes = motion(video.cuda(), generator=torch.Generator().manual_seed(0))
    assert gpu_out.is_cuda and gpu_boxes.is_cuda
    assert torch.equal(gpu_boxes.cpu(), cpu_boxes)
    assert torch.allclose(gpu_out.cpu(), cpu_out, atol=2e-3)
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)  # a CUDA generator is accepted too
    noisy = SyntheticMotion(bank.to("cuda"), background="noise")
    a, _ = noisy(video.cuda(), generator=cuda_gen)
    b, _ = noisy(video.cuda(), generator=torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_speed_report(threads, capsys):
    """Per-clip CPU time of trajectory sampling + compositing at B=32, T=16, 224 px, K=2 (report only)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        motion = SyntheticMotion(ObjectBank.procedural(64, 128, seed=0))
        video = torch.rand(32, 3, 16, 224, 224)
        gen = torch.Generator().manual_seed(0)
        motion(video, generator=gen)  # warm-up
        times = {}
        for name, fn in (
            ("trajectories", lambda: motion.sample(32, 16, 224, generator=gen)),
            ("overlay", lambda: motion(video, generator=gen)),
        ):
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            times[name] = min(runs) / 32 * 1e3
        with capsys.disabled():
            print(
                f"\n[threads={threads}] trajectory sampling {times['trajectories']:.2f} ms/clip, "
                f"sampling + compositing {times['overlay']:.1f} ms/clip"
            )
    finally:
        torch.set_num_threads(previous)


def _full_frame_reference(video, sprites, boxes, angles):
    """Straightforward full-frame warp + blend of every object (largest first), for comparison."""
    import torch.nn.functional as F

    b, _, t, h, w = video.shape
    out = video.clone()
    spr = premultiply(sprites)
    order = torch.argsort(
        (boxes[..., 2:] - boxes[..., :2]).clamp_min(0).prod(-1).mean(-1), dim=1, descending=True, stable=True
    )
    theta = placement_theta(boxes, angles, (h, w))
    for rank in range(sprites.shape[1]):
        for i in range(b):
            k = int(order[i, rank])
            grid = F.affine_grid(theta[i, k], [t, 4, h, w], align_corners=False)
            warped = F.grid_sample(spr[i, k].expand(t, -1, -1, -1), grid, align_corners=False)  # [T, 4, H, W]
            warped = warped.permute(1, 0, 2, 3)
            out[i] = out[i] * (1 - warped[3:4]) + warped[:3]
    return out


@pytest.mark.parametrize("group_size", [1, 3, 16])
@pytest.mark.parametrize("views", [True, False])
def test_region_compositing_equals_full_frame_warps(group_size, views, monkeypatch):
    comp = importlib.import_module("smile.motion.composite")  # the module (the package exports a function too)
    original = comp._blend_regions
    monkeypatch.setattr(comp, "_blend_regions", lambda *a: original(*a, views=views))
    gen = torch.Generator().manual_seed(3)
    b, t, h, w = 5, 4, 40, 48
    video = torch.rand(b, 3, t, h, w, generator=gen)
    sprites = torch.rand(b, 2, 4, 16, 16, generator=gen)
    xy = torch.rand(b, 2, t, 2, generator=gen) * 70 - 15  # some boxes leave the frame
    wh = torch.rand(b, 2, t, 2, generator=gen) * 30 + 2
    boxes = torch.cat([xy, xy + wh], -1)
    boxes[0, 1] = -1e4  # an absent object
    angles = torch.rand(b, 2, t, generator=gen) * 360 - 180
    got = comp.composite(video, sprites, boxes, angles, antialias=False, group_size=group_size)
    want = _full_frame_reference(video, sprites, boxes, angles)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    _, alphas = comp.composite(video, sprites, boxes, angles, antialias=False, group_size=group_size, return_alpha=True)
    assert alphas.shape == (b, 2, t, h, w) and alphas[0, 1].abs().max() == 0
