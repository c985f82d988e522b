"""``smile-bench``: throughput of the project's hot paths, printed as a table and written as JSON.

``smile-bench motion`` times the SMILE augmentation on one device: trajectory sampling, batched
compositing of the objects and trajectory-aware masking (plus plain tube masking for scale), per clip.
``smile-bench step [overrides]`` times the training step of an experiment (random clips, masks,
overlay and teacher included): clips/s, achieved TFLOP/s from a FLOP count, and peak memory.
``smile-bench decode`` times decoding a pretraining clip (16 frames at stride 4 from a random window)
with each backend, per clip and per worker process.
``smile-bench data [overrides]`` times the input pipeline of an experiment: a training item
(decode or render, crop, augment) and the collate in one worker-like process (one torch thread, as
DataLoader workers run), the device-side ``on_after_batch_transfer`` (normalisation, SMILE object
motion, masks), and the DataLoader workers needed to feed ``--target-clips-per-s``.
"""

from smile.cli.bench.cli import main
from smile.cli.bench.data import bench_data
from smile.cli.bench.decode import bench_decode
from smile.cli.bench.motion import bench_motion
from smile.cli.bench.step import bench_step

__all__ = ["bench_data", "bench_decode", "bench_motion", "bench_step", "main"]
