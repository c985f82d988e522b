"""LightningModules: pretraining and classification (finetuning, linear probing)."""

from smile.lit.classify import ClassifierLitModule
from smile.lit.common import NonFiniteLossError
from smile.lit.pretrain import PretrainLitModule

__all__ = ["ClassifierLitModule", "NonFiniteLossError", "PretrainLitModule"]
