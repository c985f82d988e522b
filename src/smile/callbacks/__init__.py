"""Lightning callbacks: progress bar, throughput, grad norm, RNG state, run summary, media, end-of-run probe."""

from smile.callbacks.checkpoint import PeriodicCheckpoint
from smile.callbacks.gradnorm import GradNorm
from smile.callbacks.probe import LinearProbeReport
from smile.callbacks.progress import ProgressBar
from smile.callbacks.rng import RNGStateCheckpoint
from smile.callbacks.summary import LossSummary
from smile.callbacks.throughput import ClipsPerSecond
from smile.callbacks.visualisation import MediaLogger

__all__ = [
    "ClipsPerSecond",
    "GradNorm",
    "LinearProbeReport",
    "LossSummary",
    "MediaLogger",
    "PeriodicCheckpoint",
    "ProgressBar",
    "RNGStateCheckpoint",
]
