"""Tube / random masking: exact counts, tube structure, reproducibility, views, priority tiers."""

from __future__ import annotations

import pytest
import torch

from smile.masking import (
    RandomMasking,
    TubeMasking,
    check_mask_counts,
    gather_tokens,
    masked_count,
    random_mask,
    topk_mask,
    tube_mask,
)

GRID = (8, 14, 14)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("ratio", "per_slot", "total"), [(0.75, 147, 1176), (0.8, 156, 1248), (0.9, 176, 1408)])
def test_tube_mask_exact_counts(ratio: float, per_slot: int, total: int) -> None:
    assert masked_count(ratio, 196) == per_slot
    mask = tube_mask(16, GRID, ratio, _gen(0))
    assert mask.shape == (16, 1568) and mask.dtype == torch.bool
    assert mask.sum(-1).tolist() == [total] * 16
    assert TubeMasking(ratio).num_masked(GRID) == total
    check_mask_counts(mask, total)


def test_tube_mask_same_positions_in_every_slot() -> None:
    mask = tube_mask(16, GRID, 0.8, _gen(1)).reshape(16, 8, 196)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))
    assert mask[:, 0].sum(-1).tolist() == [156] * 16


def test_tube_mask_reproducible_and_varied() -> None:
    a = tube_mask(16, GRID, 0.9, _gen(123))
    b = tube_mask(16, GRID, 0.9, _gen(123))
    c = tube_mask(16, GRID, 0.9, _gen(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.unique(a, dim=0).shape[0] == 16  # every row of the batch differs


def test_tube_mask_uniform_coverage() -> None:
    mask = tube_mask(2000, (2, 14, 14), 0.5, _gen(7))
    freq = mask.reshape(2000, 2, 196)[:, 0].float().mean(0)  # [196], expected 98/196 = 0.5
    assert torch.allclose(freq, torch.full_like(freq, 0.5), atol=0.06)


def test_random_mask_counts_and_coverage() -> None:
    mask = random_mask(16, GRID, 0.9, _gen(0))
    assert mask.sum(-1).tolist() == [1411] * 16  # int(0.9 * 1568)
    assert random_mask(4, 100, 0.75, _gen(0)).sum(-1).tolist() == [75] * 4
    many = random_mask(3000, 64, 0.25, _gen(3))
    assert many.sum(-1).eq(16).all()
    freq = many.float().mean(0)
    assert torch.allclose(freq, torch.full_like(freq, 0.25), atol=0.05)
    # random masks are not tubes: slots differ
    rows = mask.reshape(16, 8, 196)
    assert not torch.equal(rows, rows[:, :1].expand_as(rows))


@pytest.mark.parametrize("ratio", [0, 0.0, 1, 1.0, 1.2, -0.1])
def test_bad_ratio_raises(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio"):
        tube_mask(2, GRID, ratio)
    with pytest.raises(ValueError, match="ratio"):
        random_mask(2, GRID, ratio)
    with pytest.raises(ValueError, match="ratio"):
        TubeMasking(ratio)


def test_bad_grid_and_batch_raise() -> None:
    for grid in [(8, 14), (0, 14, 14), (8, -1, 14), (8, 14.5, 14)]:
        with pytest.raises(ValueError, match="grid"):
            tube_mask(2, grid, 0.5)
    with pytest.raises(ValueError, match="batch_size"):
        tube_mask(0, GRID, 0.5)


def test_views_batch_permute_rows_are_a_permutation() -> None:
    masks = TubeMasking(0.8, masks_per_clip=2, second_view="batch_permute")(16, GRID, _gen(5))
    assert masks.shape == (16, 2, 1568)
    check_mask_counts(masks, 1248)
    view0, view1 = masks[:, 0], masks[:, 1]
    rows0 = sorted(tuple(r.tolist()) for r in view0)
    rows1 = sorted(tuple(r.tolist()) for r in view1)
    assert rows0 == rows1
    assert not torch.equal(view0, view1)  # seed 5 does not draw the identity permutation


def test_views_independent_exact_counts() -> None:
    gen = TubeMasking(0.75, masks_per_clip=3)
    masks = gen(8, GRID, _gen(9))
    assert masks.shape == (8, 3, 1568)
    assert masks.sum(-1).eq(1176).all()
    assert not torch.equal(masks[:, 0], masks[:, 1])
    rnd = RandomMasking(0.5, masks_per_clip=2)(4, (2, 2, 2), _gen(1))
    assert rnd.shape == (4, 2, 8) and rnd.sum(-1).eq(4).all()
    assert torch.equal(gen(8, GRID, _gen(9)), masks)


def test_mask_generator_validation() -> None:
    with pytest.raises(ValueError, match="masks_per_clip"):
        TubeMasking(0.5, masks_per_clip=0)
    with pytest.raises(ValueError, match="second_view"):
        TubeMasking(0.5, masks_per_clip=2, second_view="shuffle")


def test_masks_per_clip_in_repr() -> None:
    gen = TubeMasking(0.5, masks_per_clip=3)
    assert gen.masks_per_clip == 3
    assert "masks_per_clip=3" in repr(gen)


def test_tube_and_random_ignore_boxes() -> None:
    boxes = torch.tensor([[[[0, 0, 224, 224]] * 16]] * 4)  # [B=4, K=1, T=16, 4], covers everything
    for cls in (TubeMasking, RandomMasking):
        a = cls(0.8, masks_per_clip=2)(4, GRID, _gen(3))
        b = cls(0.8, masks_per_clip=2)(4, GRID, _gen(3), boxes=boxes, patch_size=16)
        assert torch.equal(a, b)


def test_topk_mask_honours_tiers() -> None:
    priority = torch.randint(0, 4, (32, 100), generator=_gen(2)).float()
    k = 37
    mask = topk_mask(priority, k, _gen(3))
    assert mask.sum(-1).eq(k).all()
    lowest_chosen = priority.masked_fill(~mask, float("inf")).amin(-1)
    highest_left = priority.masked_fill(mask, float("-inf")).amax(-1)
    assert (lowest_chosen >= highest_left).all()
    # large tiers (float32 rounding of priority + noise must not cross tiers)
    big = torch.tensor([[3.0] * 50 + [4.0] * 50] * 64)
    assert topk_mask(big, 50, _gen(4))[:, 50:].all()


def test_topk_mask_random_within_tier() -> None:
    mask = topk_mask(torch.zeros(4000, 10), 3, _gen(0))
    assert torch.allclose(mask.float().mean(0), torch.full((10,), 0.3), atol=0.04)
    with pytest.raises(ValueError, match="k"):
        topk_mask(torch.zeros(2, 10), 11)


def test_gather_tokens_and_check_mask_counts() -> None:
    x = torch.arange(2 * 6).reshape(2, 6, 1).float()  # [B, N, D]
    mask = torch.tensor([[True, False, True, False, False, True], [False, True, True, False, True, False]])
    out = gather_tokens(x, mask)
    assert out.shape == (2, 3, 1)
    assert out[..., 0].tolist() == [[0.0, 2.0, 5.0], [7.0, 8.0, 10.0]]
    assert gather_tokens(x, ~mask)[..., 0].tolist() == [[1.0, 3.0, 4.0], [6.0, 9.0, 11.0]]
    bad = mask.clone()
    bad[1, 0] = True
    with pytest.raises(ValueError, match="same number"):
        gather_tokens(x, bad)
    with pytest.raises(ValueError, match="exactly 3"):
        check_mask_counts(bad, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_cuda_device_matches_cpu() -> None:
    cpu = tube_mask(4, GRID, 0.8, _gen(11))
    gpu = tube_mask(4, GRID, 0.8, _gen(11), device="cuda")
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    assert tube_mask(4, GRID, 0.8, device="cuda").sum(-1).eq(1248).all()


def test_every_generator_is_a_mask_generator_and_the_base_is_abstract() -> None:
    from smile.masking import MaskGenerator, TrajectoryMasking

    for gen in (TubeMasking(0.75), RandomMasking(0.75), TrajectoryMasking(0.75)):
        assert isinstance(gen, MaskGenerator)
        masks = gen(3, (2, 4, 4), generator=torch.Generator().manual_seed(0))  # no boxes: plain counts
        assert masks.shape == (3, gen.masks_per_clip, 32) and masks.dtype == torch.bool
        check_mask_counts(masks, gen.num_masked((2, 4, 4)))
    with pytest.raises(TypeError, match="abstract"):
        MaskGenerator(0.5)  # type: ignore[abstract]
