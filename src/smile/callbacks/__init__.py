"""Lightning callbacks: progress bar, throughput, grad norm, RNG state, run summary, media, EMA, end-of-run probe.

Pictures: ``media_logger`` (the MediaLogger callback) draws with ``render`` (pure rendering, also used by smile-vis).
"""

from smile.callbacks.checkpoint import PeriodicCheckpoint
from smile.callbacks.ema import EMAWeights
from smile.callbacks.gradnorm import GradNorm
from smile.callbacks.input_wait import InputWait
from smile.callbacks.media_logger import MediaLogger
from smile.callbacks.probe import LinearProbeReport
from smile.callbacks.progress import ProgressBar
from smile.callbacks.rng import RNGStateCheckpoint
from smile.callbacks.summary import LossSummary
from smile.callbacks.throughput import ClipsPerSecond

__all__ = [
    "ClipsPerSecond",
    "EMAWeights",
    "GradNorm",
    "InputWait",
    "LinearProbeReport",
    "LossSummary",
    "MediaLogger",
    "PeriodicCheckpoint",
    "ProgressBar",
    "RNGStateCheckpoint",
]
