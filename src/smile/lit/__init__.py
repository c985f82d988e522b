"""LightningModules: pretraining and classification (finetuning, linear probing)."""

from smile.lit.classify import ClassifierLitModule
from smile.lit.pretrain import NonFiniteLossError, PretrainLitModule

__all__ = ["ClassifierLitModule", "NonFiniteLossError", "PretrainLitModule"]
