"""Lightning callbacks: throughput, RNG state in checkpoints, run summary."""

from smile.callbacks.checkpoint import PeriodicCheckpoint
from smile.callbacks.rng import RNGStateCheckpoint
from smile.callbacks.summary import LossSummary
from smile.callbacks.throughput import ClipsPerSecond

__all__ = ["ClipsPerSecond", "LossSummary", "PeriodicCheckpoint", "RNGStateCheckpoint"]
