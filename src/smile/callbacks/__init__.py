"""Lightning callbacks: progress bar, throughput, gradient norm, RNG state in checkpoints, run summary, media."""

from smile.callbacks.checkpoint import PeriodicCheckpoint
from smile.callbacks.gradnorm import GradNorm
from smile.callbacks.progress import ProgressBar
from smile.callbacks.rng import RNGStateCheckpoint
from smile.callbacks.summary import LossSummary
from smile.callbacks.throughput import ClipsPerSecond
from smile.callbacks.visualisation import MediaLogger

__all__ = [
    "ClipsPerSecond",
    "GradNorm",
    "LossSummary",
    "MediaLogger",
    "PeriodicCheckpoint",
    "ProgressBar",
    "RNGStateCheckpoint",
]
