"""Trajectory-aware masking: label map, modes, exact counts, balancing tiers, reference statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from smile.masking import (
    TrajectoryMasking,
    check_mask_counts,
    object_tokens,
    token_labels,
    trajectory_mask,
    tube_mask,
)

SMALL = (2, 4, 4)  # t, h, w: 2 slots of 4x4 tokens, 64x64 px frames, T = 4 frames
GRID = (8, 14, 14)  # 16 frames of 224 px
MODES = ("tube", "tube+picked_frame_visible", "tube+traj_mask")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _static(boxes_per_clip: list[list[tuple[int, int, int, int]]], frames: int) -> torch.Tensor:
    """``[B, K, T, 4]`` int64 boxes that stay put for all ``frames``."""
    return torch.tensor(boxes_per_clip)[:, :, None, :].expand(-1, -1, frames, -1).contiguous()


def _columns(grid: tuple[int, int, int], cols: range) -> torch.Tensor:
    """bool ``[N]``: every token whose column is in ``cols`` (all slots, all rows)."""
    t, h, w = grid
    sel = torch.zeros(t, h, w, dtype=torch.bool)
    sel[..., list(cols)] = True
    return sel.flatten()


def _random_boxes(gen: torch.Generator, b: int, k: int, frames: int, size: int) -> torch.Tensor:
    """Moving boxes of random sizes, some partly or wholly off-frame, some covering everything."""
    centre = torch.rand(b, k, 1, 2, generator=gen) * size * 1.6 - 0.3 * size  # [B, K, 1, 2]
    step = (torch.rand(b, k, 1, 2, generator=gen) - 0.5) * size / 4
    centre = centre + step * torch.arange(frames)[:, None]  # [B, K, T, 2]
    half = (torch.rand(b, k, 1, 2, generator=gen) * 0.6 + 0.02) * size
    big = torch.rand(b, k, 1, 1, generator=gen) < 0.1  # whole-frame objects
    half = torch.where(big, torch.full_like(half, 2.0 * size), half)
    return torch.cat([centre - half, centre + half], -1).round()  # [B, K, T, 4]


# --- label map -------------------------------------------------------------------------------


def _hand_boxes() -> torch.Tensor:
    """One clip, 3 objects, 4 frames (2 per slot) on a 64x64 frame of 4x4 patches of 16 px."""
    a = [(16, 0, 20, 10), (18, 2, 31, 14), (-40, -8, 5, 3), (-30, -5, 10, 6)]  # frames 0..3
    b = [(50, 60, 100, 90), (50, 60, 100, 90), (200, 200, 260, 260), (200, 200, 260, 260)]
    c = [(-100, -100, -60, -60)] * 4  # wholly left/above the frame: covers nothing
    return torch.tensor([[a, b, c]])  # [1, 3, 4, 4]


def test_label_map_union_dilation_and_clipping() -> None:
    boxes = _hand_boxes()
    expected = torch.zeros(2, 4, 4, dtype=torch.long)
    # slot 0: union of frames 0-1 of a = (16, 0, 31, 14): cols [1, ceil(31/16)+1=3), rows [0, 2)
    expected[0, 0:2, 1:3] = 1
    # slot 0, b = (50, 60, 100, 90): cols [3, min(7+1, 4)), rows [3, 4) -- clipped at the grid
    expected[0, 3, 3] = 1
    # slot 1 (picked): union of frames 2-3 of a = (-40, -8, 10, 6): cols [0, 2), rows [0, 2)
    expected[1, 0:2, 0:2] = 2
    objects = object_tokens(boxes, SMALL, 16)
    picked = torch.tensor([[False, True]])
    labels = token_labels(objects, picked, SMALL)
    assert torch.equal(labels, expected.reshape(1, 32))
    assert torch.equal(object_tokens(boxes.float(), SMALL, 16), objects)  # float boxes alike

    plain = torch.zeros(2, 4, 4, dtype=torch.bool)  # dilation 0: only the covering cells
    plain[0, 0, 1] = plain[0, 3, 3] = plain[1, 0, 0] = True
    assert torch.equal(object_tokens(boxes, SMALL, 16, dilation=0), plain.reshape(1, 32))


def test_label_map_picked_slot_via_trajectory_mask() -> None:
    """picked_slots=[1] protects slot 1 in `picked_frame_visible`: those tokens stay visible."""
    boxes = _hand_boxes()
    labels = token_labels(object_tokens(boxes, SMALL, 16), torch.tensor([[False, True]]), SMALL)
    for seed in range(20):
        mask = trajectory_mask(
            boxes, SMALL, 16, 0.5, mode="tube+picked_frame_visible", generator=_gen(seed), picked_slots=[1]
        )
        assert mask.sum() == 16
        assert not mask[labels == 2].any()
        assert mask[labels == 1].all()


def test_label_map_rejects_bad_boxes() -> None:
    with pytest.raises(ValueError, match="boxes"):
        object_tokens(torch.zeros(1, 2, 5, 4), SMALL, 16)  # 5 frames for 2 slots
    with pytest.raises(ValueError, match="boxes"):
        object_tokens(torch.zeros(1, 4, 4), SMALL, 16)


# --- modes -----------------------------------------------------------------------------------


def _moderate_boxes(b: int = 16, seed: int = 0) -> torch.Tensor:
    """Two moving ~50 px objects per 224 px clip: the balance never needs the object tokens."""
    gen = _gen(seed)
    centre = 60 + torch.rand(b, 2, 1, 2, generator=gen) * 100 + torch.arange(16)[:, None] * 2.0
    return torch.cat([centre - 25, centre + 25], -1).round()  # [B, 2, 16, 4]


def test_mode_tube_masks_objects_and_follows_tube_in_picked_slot() -> None:
    boxes = _moderate_boxes()
    objects = object_tokens(boxes, GRID, 16)
    mask = trajectory_mask(boxes, GRID, 16, 0.8, mode="tube", generator=_gen(1), picked_slots=[3])
    check_mask_counts(mask, 1248)
    tube = tube_mask(16, GRID, 0.8, _gen(1))  # the same first draw as inside trajectory_mask
    labels = token_labels(objects, torch.arange(8)[None].eq(3).expand(16, 8), GRID)
    assert mask[labels == 1].all()
    assert torch.equal(mask[labels == 2], tube[labels == 2])  # picked slot follows the tube
    assert not (mask & ~tube & ~objects).any()  # balancing only unmasks tube background


def test_mode_picked_frame_visible() -> None:
    boxes = _moderate_boxes()
    mask = trajectory_mask(boxes, GRID, 16, 0.8, mode="tube+picked_frame_visible", generator=_gen(2))
    check_mask_counts(mask, 1248)
    objects = object_tokens(boxes, GRID, 16).reshape(16, 8, 196)
    visible_obj = (objects & ~mask.reshape(16, 8, 196)).sum(-1)  # [B, t]
    # exactly one slot per clip has all its object tokens visible; the others none
    assert torch.equal(visible_obj.amax(-1), objects.sum(-1).gather(-1, visible_obj.argmax(-1, keepdim=True))[:, 0])
    assert ((visible_obj > 0).sum(-1) == 1).all()


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.2, 0.5])
def test_mode_traj_mask_keeps_exact_fraction(keep: float) -> None:
    boxes = _moderate_boxes(seed=3)
    mask = trajectory_mask(boxes, GRID, 16, 0.8, traj_unmask_ratio=keep, generator=_gen(4))
    check_mask_counts(mask, 1248)
    objects = object_tokens(boxes, GRID, 16)
    n_obj = objects.sum(-1)
    expected = [int(keep * n) for n in n_obj.tolist()]
    assert (objects & ~mask).sum(-1).tolist() == expected
    # background: an over-count only unmasks tube-masked tokens, an under-count only adds more
    background = ~objects
    tube = tube_mask(16, GRID, 0.8, _gen(4))  # the same first draw as inside trajectory_mask
    over = (n_obj - torch.tensor(expected) + (tube & background).sum(-1)) >= 1248  # [B]
    assert over.all() if keep <= 0.1 else (~over).any()  # both branches exercised
    assert not (mask & background & ~tube)[over].any()
    assert (mask | ~(tube & background))[~over].all()


def test_same_seed_same_mask_and_seeds_differ() -> None:
    boxes = _moderate_boxes()
    for mode in MODES:
        a = trajectory_mask(boxes, GRID, 16, 0.8, mode=mode, generator=_gen(7))
        b = trajectory_mask(boxes, GRID, 16, 0.8, mode=mode, generator=_gen(7))
        c = trajectory_mask(boxes, GRID, 16, 0.8, mode=mode, generator=_gen(8))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_exact_counts_over_many_random_cases() -> None:
    gen = _gen(0)
    grids = [(8, 14, 14), (2, 4, 4), (1, 3, 5), (4, 7, 6), (8, 2, 2)]
    for case in range(240):
        t, h, w = grids[case % len(grids)]
        tub = 1 + case % 3
        k = case % 4  # 0 objects included
        ratio = [0.5, 0.75, 0.8, 0.9, 0.3][case % 5]
        mode = MODES[case % 3]
        picked = [None, None, [0], list(range(t)), []][case % 5]
        boxes = _random_boxes(gen, 12, k, t * tub, 16 * max(h, w))
        if case % 7 == 0:
            boxes = boxes.long()
        mask = trajectory_mask(boxes, (t, h, w), 16, ratio, (case % 10) / 10, mode, gen, picked, case % 2)
        assert mask.shape == (12, t * h * w) and mask.dtype == torch.bool
        check_mask_counts(mask, t * int(ratio * h * w))


@pytest.mark.parametrize("mode", MODES)
def test_degenerate_boxes(mode: str) -> None:
    off = _static([[(500, 500, 600, 600), (-300, -300, -250, -250)]] * 4, 16)  # nothing on screen
    full = _static([[(-10, -10, 300, 300)]] * 4, 16)  # covers every token
    tube = tube_mask(4, GRID, 0.8, _gen(5))
    mask = trajectory_mask(off, GRID, 16, 0.8, mode=mode, generator=_gen(5))
    assert torch.equal(mask, tube)  # no objects: exactly the tube mask
    mask = trajectory_mask(full, GRID, 16, 0.8, mode=mode, generator=_gen(5))
    check_mask_counts(mask, 1248)
    empty = torch.zeros(4, 0, 16, 4)  # K = 0
    assert torch.equal(trajectory_mask(empty, GRID, 16, 0.8, mode=mode, generator=_gen(5)), tube)


# --- balancing tiers -------------------------------------------------------------------------


def test_over_count_drops_tube_background_before_object_tokens() -> None:
    # `tube` mode, no protected slot: left half is object (16 tokens), total = 16.
    left = _static([[(0, 0, 16, 64)]] * 8, 4)  # cols [0, 1+1) = {0, 1}
    half = _columns(SMALL, range(2))
    for seed in range(10):
        mask = trajectory_mask(left, SMALL, 16, 0.5, mode="tube", generator=_gen(seed), picked_slots=[])
        assert (mask == half).all()  # every tube-masked background token was unmasked, no object one
    # 3/4 object (24 tokens > total): all background visible, 16 of the 24 object tokens masked
    wide = _static([[(0, 0, 32, 64)]] * 8, 4)
    three = _columns(SMALL, range(3))
    mask = trajectory_mask(wide, SMALL, 16, 0.5, mode="tube", generator=_gen(0), picked_slots=[])
    assert not (mask & ~three).any() and mask.sum(-1).eq(16).all()
    # traj_mask alike: 22 object tokens to mask > 16
    mask = trajectory_mask(wide, SMALL, 16, 0.5, 0.1, generator=_gen(0))
    assert not (mask & ~three).any() and mask.sum(-1).eq(16).all()


def test_over_count_keeps_protected_tube_tokens_in_tube_mode() -> None:
    # whole frame is object; slot 0 picked: its tube tokens stay masked, slot 1 gives up 8 tokens
    full = _static([[(0, 0, 64, 64)]] * 8, 4)
    mask = trajectory_mask(full, SMALL, 16, 0.5, mode="tube", generator=_gen(3), picked_slots=[0]).reshape(8, 2, 16)
    tube = tube_mask(8, SMALL, 0.5, _gen(3)).reshape(8, 2, 16)
    assert torch.equal(mask[:, 0], tube[:, 0])
    assert mask[:, 1].sum(-1).eq(8).all()


def test_under_count_masks_tube_visible_background_before_protected() -> None:
    # every slot protected, left half object: background (right half) all masked, objects untouched
    left = _static([[(0, 0, 16, 64)]] * 8, 4)
    right = ~_columns(SMALL, range(2))
    for seed in range(10):
        mask = trajectory_mask(
            left, SMALL, 16, 0.5, mode="tube+picked_frame_visible", generator=_gen(seed), picked_slots=[0, 1]
        )
        assert (mask == right).all()
    # 3/4 object: 8 background tokens all masked, then 8 of the 24 protected ones
    wide = _static([[(0, 0, 32, 64)]] * 8, 4)
    bg = ~_columns(SMALL, range(3))
    mask = trajectory_mask(
        wide, SMALL, 16, 0.5, mode="tube+picked_frame_visible", generator=_gen(0), picked_slots=[0, 1]
    )
    assert mask[:, bg].all() and (mask & ~bg).sum(-1).eq(8).all()
    # traj_mask with 90% kept: 3 object tokens masked + 8 background < 16 -> 5 kept ones masked
    mask = trajectory_mask(wide, SMALL, 16, 0.5, 0.9, generator=_gen(0))
    assert mask[:, bg].all() and (mask & ~bg).sum(-1).eq(8).all()


def _set_rule(labels: np.ndarray, tube: np.ndarray, total: int, mode: str, keep: float, rng) -> np.ndarray:
    """SPEC §3.3's set-based procedure for one clip, written out step by step (the test oracle)."""
    m1, p2 = labels == 1, labels == 2
    mask = m1 | tube
    if mode == "tube+picked_frame_visible":
        mask &= ~p2
    elif mode == "tube+traj_mask":
        traj = np.flatnonzero(m1 | p2)
        kept = rng.choice(traj, int(keep * traj.size), replace=False)
        mask[traj] = True
        mask[kept] = False
        p2 = np.zeros_like(p2)
        p2[kept] = True
        m1 = (labels > 0) & ~p2
    d = int(mask.sum()) - total
    tmn, tun = np.flatnonzero(tube & ~m1 & ~p2), np.flatnonzero(~tube & ~m1 & ~p2)
    if d > 0:
        first = rng.choice(tmn, min(d, tmn.size), replace=False)
        rest = rng.choice(np.flatnonzero(m1), d - first.size, replace=False)
        mask[first] = mask[rest] = False
    elif d < 0:
        first = rng.choice(tun, min(-d, tun.size), replace=False)
        rest = rng.choice(np.flatnonzero(p2 & ~mask), -d - first.size, replace=False)
        mask[first] = mask[rest] = True
    assert mask.sum() == total
    return mask


@pytest.mark.parametrize(
    ("box", "mode", "keep", "picked"),
    [
        ((0, 0, 32, 64), "tube", 0.1, [0]),  # over; boundary in M1 (protected tube tokens kept)
        ((0, 0, 16, 48), "tube", 0.1, [1]),  # over; boundary in TMN
        ((0, 0, 16, 64), "tube+picked_frame_visible", 0.1, [0, 1]),  # under; TUN
        ((0, 0, 32, 64), "tube+picked_frame_visible", 0.1, [0, 1]),  # under; boundary in P2
        ((0, 0, 32, 64), "tube+traj_mask", 0.1, [0]),  # over; boundary in M1 (picked slot unused)
        ((8, 8, 30, 40), "tube+traj_mask", 0.3, [0]),  # over or under by the tube draw
        ((0, 0, 32, 64), "tube+traj_mask", 0.9, [0]),  # under; boundary in P2
    ],
)
def test_tiers_match_set_rule_distribution(box: tuple, mode: str, keep: float, picked: list[int]) -> None:
    """Per-token masking frequencies of the one top-k equal those of the step-by-step rule."""
    draws, total = 3000, 16
    boxes = _static([[box]] * draws, 4)
    ours = trajectory_mask(boxes, SMALL, 16, 0.5, keep, mode, _gen(0), picked).float().mean(0)  # [N]
    is_picked = torch.tensor([[slot in picked for slot in range(2)]])  # [1, t]
    labels = token_labels(object_tokens(boxes[:1], SMALL, 16), is_picked, SMALL)[0].numpy()
    rng = np.random.default_rng(0)
    ref = np.zeros(32)
    for _ in range(draws):
        spatial = np.zeros(16, dtype=bool)
        spatial[rng.choice(16, 8, replace=False)] = True
        ref += _set_rule(labels, np.tile(spatial, 2), total, mode, keep, rng)
    assert np.abs(ours.numpy() - ref / draws).max() < 0.045


# --- statistics against the reference (SPEC §3.3 [M] table) -----------------------------------


def _visible_stats(mask: torch.Tensor, objects: torch.Tensor) -> tuple[float, float]:
    """Mean visible object tokens per clip, mean std (numpy's ddof=0) over slots of visible counts."""
    visible = ~mask
    per_slot = visible.reshape(-1, 8, 196).sum(-1).float()  # [B, t]
    return float((visible & objects).sum(-1).float().mean()), float(per_slot.std(-1, correction=0).mean())


def test_statistics_match_reference() -> None:
    trajectories = pytest.importorskip("smile.motion.trajectories")
    boxes, _ = trajectories.sample_trajectories(300, 16, 224, None, _gen(0))  # [300, 2, 16, 4]
    objects = object_tokens(boxes, GRID, 16)
    n_obj = float(objects.sum(-1).float().mean())
    assert 540 <= n_obj <= 680, n_obj  # reference ≈ 608
    stats = {}
    for mode, keep in [
        ("tube", 0.1),
        ("tube+picked_frame_visible", 0.1),
        ("tube+traj_mask", 0.1),
        ("tube+traj_mask", 0.2),
    ]:
        mask = trajectory_mask(boxes, GRID, 16, 0.8, keep, mode, _gen(1))
        check_mask_counts(mask, 1248)
        stats[mode, keep] = _visible_stats(mask, objects)
    assert 45 <= stats["tube+traj_mask", 0.1][0] <= 75, stats  # reference ≈ 60
    assert 100 <= stats["tube+traj_mask", 0.2][0] <= 140, stats  # reference ≈ 121
    assert 55 <= stats["tube+picked_frame_visible", 0.1][0] <= 100, stats  # reference ≈ 76
    assert 5 <= stats["tube", 0.1][0] <= 30, stats  # reference ≈ 15
    assert stats["tube+traj_mask", 0.1][1] < stats["tube+picked_frame_visible", 0.1][1], stats


# --- TrajectoryMasking -----------------------------------------------------------------------


def test_generator_batch_permute_rows_are_a_permutation() -> None:
    gen = TrajectoryMasking()
    assert gen.masks_per_clip == 2 and gen.second_view == "batch_permute"
    masks = gen(16, GRID, _gen(5), boxes=_moderate_boxes())
    assert masks.shape == (16, 2, 1568)
    check_mask_counts(masks, gen.num_masked(GRID))
    rows0 = sorted(tuple(r.tolist()) for r in masks[:, 0])
    rows1 = sorted(tuple(r.tolist()) for r in masks[:, 1])
    assert rows0 == rows1 and not torch.equal(masks[:, 0], masks[:, 1])


def test_generator_independent_views_use_own_boxes() -> None:
    # clip 0: object on the left 7 columns, clip 1: on the right 7 columns (all 16 frames)
    boxes = _static([[(0, 0, 96, 224)], [(112, 0, 223, 224)]], 16)
    gen = TrajectoryMasking(0.8, 0.1, masks_per_clip=3, second_view="independent")
    masks = gen(2, GRID, _gen(6), boxes=boxes)  # [2, 3, N]
    check_mask_counts(masks, 1248)
    left, right = _columns(GRID, range(7)), _columns(GRID, range(7, 14))
    for v in range(3):
        assert (~masks[0, v] & left).sum() == int(0.1 * 784)  # only the kept fraction visible
        assert (~masks[1, v] & right).sum() == int(0.1 * 784)
    assert not torch.equal(masks[:, 0], masks[:, 1])


@pytest.mark.parametrize("second_view", ["batch_permute", "independent"])
def test_generator_without_boxes_falls_back_to_tube(second_view: str) -> None:
    masks = TrajectoryMasking(0.75, second_view=second_view)(6, GRID, _gen(2))
    check_mask_counts(masks, 1176)
    slots = masks.reshape(6, 2, 8, 196)
    assert torch.equal(slots, slots[:, :, :1].expand_as(slots))  # plain tubes


def test_generator_validation_and_repr() -> None:
    for kwargs, key in [
        ({"mode": "traj"}, "mode"),
        ({"traj_unmask_ratio": 1.0}, "traj_unmask_ratio"),
        ({"traj_unmask_ratio": -0.1}, "traj_unmask_ratio"),
        ({"ratio": 1.0}, "ratio"),
        ({"ratio": 0.0}, "ratio"),
        ({"masks_per_clip": 0}, "masks_per_clip"),
        ({"dilation": -1}, "dilation"),
        ({"picked_slots": [-1]}, "picked_slots"),
        ({"second_view": "swap"}, "second_view"),
    ]:
        with pytest.raises(ValueError, match=key):
            TrajectoryMasking(**kwargs)
    with pytest.raises(ValueError, match="picked_slots"):
        TrajectoryMasking(picked_slots=[8])(2, GRID, boxes=_moderate_boxes(2))
    with pytest.raises(ValueError, match="boxes"):
        TrajectoryMasking()(3, GRID, boxes=_moderate_boxes(2))
    text = repr(TrajectoryMasking())
    assert "traj_unmask_ratio=0.1" in text and "masks_per_clip=2" in text and "tube+traj_mask" in text


@pytest.mark.slow  # a timing report, no assertion: not in the default suite (`make test-all` prints it)
def test_speed_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Reports (does not assert) ms per clip at B=64, 8x14x14 on one CPU thread (reference: 0.3-0.4).

    One thread, like the reference's per-core figure and a DataLoader worker; best of 5 rounds so
    a busy machine does not inflate the number.
    """
    boxes = _moderate_boxes(64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trajectory_mask(boxes, GRID, 16, 0.8, generator=_gen(0))  # warm-up
        rounds = []
        for r in range(5):
            start = time.perf_counter()
            for i in range(5):
                trajectory_mask(boxes, GRID, 16, 0.8, generator=_gen(5 * r + i))
            rounds.append((time.perf_counter() - start) / 5 / 64 * 1e3)
    finally:
        torch.set_num_threads(threads)
    with capsys.disabled():
        print(f"\ntrajectory_mask: {min(rounds):.4f} ms/clip (B=64, 8x14x14, CPU, 1 thread, best of 5)")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_cpu_generator() -> None:
    boxes = _moderate_boxes(8)
    for mode in MODES:
        cpu = trajectory_mask(boxes, GRID, 16, 0.8, mode=mode, generator=_gen(3))
        gpu = trajectory_mask(boxes.cuda(), GRID, 16, 0.8, mode=mode, generator=_gen(3))
        assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
        dev_gen = torch.Generator(device="cuda").manual_seed(3)
        check_mask_counts(trajectory_mask(boxes.cuda(), GRID, 16, 0.8, mode=mode, generator=dev_gen), 1248)
    masks = TrajectoryMasking(second_view="independent")(8, GRID, _gen(1), device="cuda", boxes=boxes)
    assert masks.is_cuda
    check_mask_counts(masks, 1248)
