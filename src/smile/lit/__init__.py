"""LightningModules: pretraining, classification (finetuning, linear probing) and AVA action detection."""

from smile.lit.classify import ClassifierLitModule
from smile.lit.common import NonFiniteLossError
from smile.lit.detect import DetectionLitModule
from smile.lit.pretrain import PretrainLitModule

__all__ = ["ClassifierLitModule", "DetectionLitModule", "NonFiniteLossError", "PretrainLitModule"]
