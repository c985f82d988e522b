"""LightningModules: pretraining (and, later, classification)."""

from smile.lit.pretrain import NonFiniteLossError, PretrainLitModule

__all__ = ["NonFiniteLossError", "PretrainLitModule"]
