"""``smile-bench decode``: milliseconds per pretraining clip, per video and decoding backend."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smile.cli.bench.common import _print_table

if TYPE_CHECKING:
    from smile.data.decoding import Backend


def bench_decode(
    videos: list[Path], backends: list[Backend], clips: int, frames: int, rate: int
) -> list[dict[str, Any]]:
    """Milliseconds per pretraining clip (random ``frames`` x ``rate`` window), one row per video and backend.

    Videos differ (codec, size, length), so each gets its own row: one slow file is not hidden in a
    median over all of them. ``clips`` clips are cut from each video.
    """
    return [_bench_one(path, backend, clips, frames, rate) for path in videos for backend in backends]


def _bench_one(path: Path, backend: Backend, clips: int, frames: int, rate: int) -> dict[str, Any]:
    """Median time of ``clips`` random pretraining clips of one video with one backend."""
    import numpy as np

    from smile.data.decoding import read_clip
    from smile.data.sampling import pretrain_indices

    rng = np.random.default_rng(0)

    def choose(n: int) -> np.ndarray:
        return pretrain_indices(n, frames, rate, rng=rng)

    times = []
    for _ in range(clips):
        start = time.perf_counter()
        frames_, _ = read_clip(path, choose, backend=backend)
        times.append(time.perf_counter() - start)
    ms = 1e3 * float(np.median(times))
    return {
        "stage": f"decode {backend}",
        "video": path.name,
        "ms_per_clip": ms,
        "clips_per_s": 1e3 / ms,
        "frame_shape": "x".join(map(str, frames_.shape)),
    }


def _sample_video(out: Path, num_frames: int = 300, size: tuple[int, int] = (256, 340)) -> Path:
    """A Kinetics-like test clip (moving noise texture, H.264) when the user names no video."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (size[0] * 2, size[1] * 2, 3), dtype=np.uint8)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for k in range(num_frames):
            frame = texture[k % size[0] : k % size[0] + size[0], k : k + size[1]]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def _decode_main(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos or [_sample_video(Path(tmp) / "sample.mp4")]
        rows = bench_decode(videos, args.backends, args.clips, args.frames, args.rate)
    context = {"videos": len(videos), "clips_per_video": args.clips, "frames": args.frames, "rate": args.rate}
    _print_table("smile-bench decode (one process, one decoder thread)", rows, context)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": "decode", "context": context, "results": rows}, indent=2))
    return 0
