"""ObjectBank: procedural sprites, array round trips, device moves, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from smile.motion import ObjectBank


def test_procedural_is_deterministic_per_seed():
    a = ObjectBank.procedural(num_objects=12, size=32, seed=3)
    b = ObjectBank.procedural(num_objects=12, size=32, seed=3)
    c = ObjectBank.procedural(num_objects=12, size=32, seed=4)
    assert a.sprites.shape == (12, 4, 32, 32) and a.sprites.dtype == torch.uint8
    assert torch.equal(a.sprites, b.sprites) and torch.equal(a.aspect, b.aspect) and a.names == b.names
    assert not torch.equal(a.sprites, c.sprites)
    assert len(a) == 12 and a.size == 32 and len(a.categories) == 12


def test_procedural_sprites_are_soft_edged_shapes():
    bank = ObjectBank.procedural(num_objects=32, size=48, seed=0)
    alpha = bank.sprites[:, 3].float() / 255  # [N, S, S]
    assert (alpha[:, 0, 0] == 0).all() and (alpha[:, -1, -1] == 0).all()  # corners transparent
    assert (alpha[:, 24, 24] == 1).float().mean() > 0.9  # centre opaque (nearly always)
    soft = ((alpha > 0) & (alpha < 1)).flatten(1).any(1)
    assert soft.all()  # anti-aliased edges
    coverage = alpha.flatten(1).mean(1)
    assert (coverage > 0.15).all() and (coverage < 0.95).all()
    assert set(bank.categories) <= {"ellipse", "polygon", "star", "blob"} and len(set(bank.categories)) > 1
    assert ((bank.aspect >= 0.5) & (bank.aspect <= 2.0)).all()


def test_from_arrays_round_trip_both_layouts():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, size=(3, 8, 8, 4), dtype=np.uint8)
    bank = ObjectBank.from_arrays(nhwc, names=["a/1.png", "a/2.png", "b/1.png"])
    assert bank.sprites.shape == (3, 4, 8, 8)
    assert np.array_equal(bank.sprites.permute(0, 2, 3, 1).numpy(), nhwc)
    assert bank.categories == ["a", "a", "b"] and torch.equal(bank.aspect, torch.ones(3))
    nchw = ObjectBank.from_arrays(torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous(), layout="nchw")
    assert torch.equal(nchw.sprites, bank.sprites) and nchw.names == ["obj0", "obj1", "obj2"]


def test_take_gathers_and_scales():
    bank = ObjectBank.procedural(num_objects=5, size=16, seed=1)
    ids = torch.tensor([[4, 0], [2, 2]])
    out = bank.take(ids)
    assert out.shape == (2, 2, 4, 16, 16) and out.dtype == torch.float32
    assert torch.allclose(out[0, 0], bank.sprites[4].float() / 255)
    assert torch.equal(bank.take(ids, dtype=None)[1, 1], bank.sprites[2])


def test_subset_to_and_pickle():
    bank = ObjectBank.procedural(num_objects=6, size=8, seed=2)
    sub = bank.subset([5, 1])
    assert sub.names == [bank.names[5], bank.names[1]] and torch.equal(sub.sprites[0], bank.sprites[5])
    assert bank.to("cpu") is bank
    back = pickle.loads(pickle.dumps(bank))
    assert torch.equal(back.sprites, bank.sprites) and back.names == bank.names


def test_invalid_arrays_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        ObjectBank.from_arrays(np.zeros((2, 8, 8, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="S, S"):
        ObjectBank(torch.zeros(2, 4, 8, 6, dtype=torch.uint8), torch.ones(2), ["a", "b"], ["", ""])
    with pytest.raises(ValueError, match="names"):
        ObjectBank(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), torch.ones(2), ["a"], ["", ""])
