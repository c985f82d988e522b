"""How long a run trains: whichever of ``trainer.max_steps`` / ``trainer.max_epochs`` is set.

The trainer configs leave both unset (``max_epochs: null``, ``max_steps: -1``), so a limit given on
the command line or in an experiment is the one that counts: ``trainer.max_steps=20`` runs 20 steps
however short an epoch is (the epochs are then unbounded), ``trainer.max_epochs=2`` runs 2 epochs,
both set stop at the first reached (Lightning's rule). Neither set: ``default_epochs`` epochs
(``configs/train.yaml``). The lr schedule follows, since it reads the trainer's
``estimated_stepping_batches``. :func:`stop_reason` says afterwards which limit ended the run.
"""

from __future__ import annotations

from typing import Protocol

from omegaconf import DictConfig

from smile.checks import ConfigError

__all__ = ["resolve_run_length", "stop_reason"]

NO_LIMIT = -1


def resolve_run_length(cfg: DictConfig) -> None:
    """Fill ``cfg.trainer.max_epochs`` in place when it is unset (null).

    Only ``max_steps`` set: ``-1`` (no epoch limit, the steps decide). Neither set:
    ``cfg.default_epochs``. A set ``max_epochs`` is left alone, so is an explicit ``-1``.

    Raises:
        ConfigError: ``default_epochs`` is not an int >= 1 while it is needed.
    """
    trainer = cfg.trainer
    if trainer.max_epochs is not None:
        return
    if trainer.max_steps != NO_LIMIT:
        trainer.max_epochs = NO_LIMIT
        return
    default = cfg.default_epochs
    if isinstance(default, bool) or not isinstance(default, int) or default < 1:
        raise ConfigError(
            f"default_epochs={default!r}: must be an int >= 1 (the run length when neither trainer.max_steps "
            "nor trainer.max_epochs is set), e.g. default_epochs=1"
        )
    trainer.max_epochs = default


class _Loop(Protocol):
    """The parts of a Lightning trainer that tell where and why fitting stopped."""

    @property
    def max_steps(self) -> int: ...
    @property
    def max_epochs(self) -> int | None: ...
    @property
    def global_step(self) -> int: ...
    @property
    def current_epoch(self) -> int: ...
    @property
    def interrupted(self) -> bool: ...


def stop_reason(trainer: _Loop) -> str:
    """One line: which limit ended the run, and where it stood on the other one.

    E.g. ``stopped by trainer.max_steps=20 after 20 steps, 3 epochs (trainer.max_epochs=-1)``; an
    interrupted run (Ctrl-C, Lightning's graceful shutdown) and an early stop are named too.
    """
    steps, epochs = trainer.max_steps, trainer.max_epochs
    where = f"{trainer.global_step} steps, {trainer.current_epoch} epochs"  # the last one may be partial
    if trainer.interrupted:
        return f"interrupted after {where} (trainer.max_steps={steps}, trainer.max_epochs={epochs})"
    if steps != NO_LIMIT and trainer.global_step >= steps:
        return f"stopped by trainer.max_steps={steps} after {where} (trainer.max_epochs={epochs})"
    if epochs is not None and epochs != NO_LIMIT and trainer.current_epoch >= epochs:
        return f"stopped by trainer.max_epochs={epochs} after {where} (trainer.max_steps={steps})"
    return f"stopped early after {where}, before trainer.max_steps={steps} and trainer.max_epochs={epochs}"
