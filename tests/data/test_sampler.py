import torch

from smile.data import ResumableSampler
from smile.data.streams import step_generator


def test_ranks_partition_one_permutation():
    parts = [list(ResumableSampler(10, seed=3, rank=r, world_size=3, drop_last=True)) for r in range(3)]
    flat = sum(parts, [])
    assert [len(p) for p in parts] == [3, 3, 3]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))


def test_padding_without_drop_last():
    parts = [list(ResumableSampler(10, seed=3, rank=r, world_size=3, drop_last=False)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert set(sum(parts, [])) == set(range(10))


def test_epochs_reshuffle_deterministically():
    s = ResumableSampler(50, seed=1)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert e0 != e1 and sorted(e0) == sorted(e1) == list(range(50))
    t = ResumableSampler(50, seed=1)
    t.set_epoch(1)
    assert list(t) == e1


def test_resume_skips_consumed_samples_once():
    full = ResumableSampler(20, seed=5)
    full.set_epoch(2)
    order = list(full)
    s = ResumableSampler(20, seed=5)
    s.resume(epoch=2, consumed=8)
    s.set_epoch(2)  # Lightning calls this at the start of the resumed epoch: the skip must survive
    assert list(s) == order[8:]
    assert list(s) == order  # the next pass of the same epoch is whole again
    s.resume(epoch=2, consumed=8)
    s.set_epoch(3)  # a new epoch forgets the skip
    assert len(list(s)) == 20


def test_set_epoch_reaches_the_dataset_hook():
    seen = []
    s = ResumableSampler(4, on_epoch=seen.append)
    s.set_epoch(3)
    s.resume(epoch=5, consumed=1)
    assert seen == [3, 5]


def test_step_generator_is_a_function_of_seed_rank_step():
    def draw(*a):
        return torch.rand(4, generator=step_generator(*a, torch.device("cpu")))

    assert torch.equal(draw(0, 0, 7), draw(0, 0, 7))
    assert not torch.equal(draw(0, 0, 7), draw(0, 0, 8))
    assert not torch.equal(draw(0, 0, 7), draw(0, 1, 7))
    assert not torch.equal(draw(0, 0, 7), draw(1, 0, 7))
