"""Rank-aware samplers whose training position is saved in checkpoints: one mechanism for every data module.

Every trainer config sets ``use_distributed_sampler: false``, so the data modules shard themselves with
:class:`~smile.data.sampler.ResumableSampler`; this mixin builds those samplers and saves where the
training one stands (``state_dict``), so a resumed run continues the same epoch order mid-epoch.
"""

from __future__ import annotations

from typing import Any

from smile.data.sampler import ResumableSampler

__all__ = ["ResumableSampling"]


class ResumableSampling:
    """Mixin of a ``LightningDataModule`` (listed before it): samplers per rank, training position in checkpoints.

    The data module sets ``seed`` and ``train_items_per_batch`` (dataset items per training batch) and
    calls :meth:`_init_sampling` in its ``__init__``.
    """

    trainer: Any  # provided by L.LightningDataModule
    seed: int
    train_items_per_batch: int

    def _init_sampling(self) -> None:
        self._train_sampler: ResumableSampler | None = None
        self._resume_state: dict[str, int] | None = None

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _train_sampler_for(self, length: int, drop_last: bool, on_epoch: Any = None) -> ResumableSampler:
        """The shuffled training sampler of this rank, continued from a loaded checkpoint's position."""
        rank, world = self._rank_world()
        sampler = ResumableSampler(
            length, shuffle=True, seed=self.seed, rank=rank, world_size=world, drop_last=drop_last, on_epoch=on_epoch
        )
        if self._resume_state is not None:
            sampler.resume(**self._resume_state)
            self._resume_state = None
        self._train_sampler = sampler
        return sampler

    def _eval_sampler_for(self, length: int) -> ResumableSampler:
        """In-order shards; with several ranks the last shard is padded (evaluation de-duplicates)."""
        rank, world = self._rank_world()
        return ResumableSampler(length, shuffle=False, rank=rank, world_size=world, drop_last=False)

    def sampling_state(self) -> dict[str, Any]:
        """Where the training sampler stands (empty before training): saved in checkpoints."""
        trainer = self.trainer
        if trainer is None or self._train_sampler is None:
            return {}
        # `processed`, not `completed`: checkpoints written in on_train_batch_end come before
        # Lightning marks the batch completed, yet that batch is done.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {
            "epoch": self._train_sampler.epoch,
            "trainer_epoch": trainer.current_epoch,
            "consumed": done * self.train_items_per_batch,  # sampler indices (dataset items), not clips
        }

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`sampling_state` when the training sampler is next built."""
        if state:
            self._resume_state = {k: int(v) for k, v in state.items() if v is not None}
