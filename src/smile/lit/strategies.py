"""Builders for Lightning strategies and cluster plugins that YAML cannot express directly."""

from __future__ import annotations

import signal
from typing import Literal

from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import FSDPStrategy

from smile.models.layers import Block

ShardingStrategyName = Literal["FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"]


def fsdp_strategy(
    sharding_strategy: ShardingStrategyName = "FULL_SHARD",
    activation_checkpointing: bool = True,
    state_dict_type: Literal["full", "sharded"] = "full",
) -> FSDPStrategy:
    """FSDP that wraps every transformer ``Block`` (encoder, decoder and ViT teachers alike).

    Mixed precision comes from ``trainer.precision`` (``bf16-mixed``), as everywhere else.
    ``activation_checkpointing`` recomputes each block in the backward pass: less memory, ~30 % slower.
    ``state_dict_type="full"`` keeps checkpoints in the same single-file format as DDP runs.
    """
    return FSDPStrategy(
        auto_wrap_policy={Block},
        activation_checkpointing_policy={Block} if activation_checkpointing else None,
        sharding_strategy=sharding_strategy,
        state_dict_type=state_dict_type,
    )


def slurm_environment(auto_requeue: bool = True, requeue_signal: str = "SIGUSR1") -> SLURMEnvironment:
    """SLURM cluster environment that saves a checkpoint and requeues the job on ``requeue_signal``.

    Submit with ``#SBATCH --signal=SIGUSR1@90`` so SLURM warns 90 s before the time limit; the
    requeued job re-runs the same command and resumes from the newest checkpoint, turning the
    reference's chain of 59-minute array jobs into one command.
    """
    return SLURMEnvironment(auto_requeue=auto_requeue, requeue_signal=getattr(signal, requeue_signal))
