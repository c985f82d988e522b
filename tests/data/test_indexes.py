"""Dataset indexes: each published layout -> records + class names, list round trip, smile-data index.

Videos are real tiny files (8 frames, 32x24) encoded once per codec and copied into each layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from smile_testing import write_video

from smile.cli.data import main
from smile.data.datasets.list import read_video_list
from smile.data.indexes import VideoRecord, index_dataset, write_list

CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9", ".avi": "mpeg4"}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny real video per container: ``{".mp4": path, ".webm": path, ".avi": path}``."""
    folder = tmp_path_factory.mktemp("seeds")
    return {
        ext: write_video(folder / f"seed{ext}", 8, codec=codec, width=32, height=24) for ext, codec in CODECS.items()
    }


def place(seeds: dict[str, Path], path: Path) -> Path:
    """Copy the seed video with ``path``'s extension (``.mkv`` gets the mp4) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(seeds.get(path.suffix, seeds[".mp4"]), path)
    return path


def labels_by_id(records: list[VideoRecord]) -> dict[str, int]:
    return {r.video_id: r.label for r in records}


# --- Kinetics ----------------------------------------------------------------------------------

K400_CLASSES = ["abseiling", "air drumming", "passing American football (in game)"]
K400_TRAIN = [  # (label, youtube_id, start, end)
    ("abseiling", "aaa", 0, 10),
    ("passing American football (in game)", "bbb", 14, 24),
    ("air drumming", "ccc", 5, 15),
    ("abseiling", "ddd", 120, 130),
    ("air drumming", "gone", 1, 11),  # its video is absent
]
K400_VAL = [("passing American football (in game)", "vvv", 3, 13), ("air drumming", "www", 0, 10)]


def k400_csv(path: Path, rows: list[tuple[str, str, int, int]], split: str) -> None:
    lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
    lines += [f'"{label}",{yid},{s},{e},{split},0' for label, yid, s, e in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def k400_name(yid: str, start: int, end: int) -> str:
    return f"{yid}_{start:06d}_{end:06d}"


@pytest.fixture
def k400_ann(tmp_path: Path) -> Path:
    ann = tmp_path / "annotations"
    k400_csv(ann / "train.csv", K400_TRAIN, "train")
    k400_csv(ann / "validate.csv", K400_VAL, "val")
    (ann / "test.csv").write_text("youtube_id,time_start,time_end,split\nttt,0,10,test\n")  # K700 style: no labels
    return ann


def test_k400_flat_layout(k400_ann: Path, tmp_path: Path, seeds):
    root = tmp_path / "k400"
    exts = [".mp4", ".webm", ".mkv", ".mp4"]
    for (_, yid, s, e), ext in zip(K400_TRAIN[:4], exts, strict=True):
        place(seeds, root / "train" / f"{k400_name(yid, s, e)}{ext}")
    for _, yid, s, e in K400_VAL:
        place(seeds, root / "val" / f"{k400_name(yid, s, e)}.mp4")
    place(seeds, root / f"{k400_name('ttt', 0, 10)}.avi")  # flat in the root

    index = index_dataset("k400", root, k400_ann, "train")
    assert index.classes == K400_CLASSES
    assert labels_by_id(index.records) == {
        "aaa_000000_000010": 0,
        "bbb_000014_000024": 2,
        "ccc_000005_000015": 1,
        "ddd_000120_000130": 0,
    }
    assert index.records[1].path == str(root / "train" / "bbb_000014_000024.webm")
    assert index.missing == ["gone_000001_000011"]
    assert "4 videos, 3 classes, 1 dropped" in index.summary() and "gone_000001_000011" in index.summary()

    index = index_dataset("k400", root, k400_ann, "val")
    records, classes = index.records, index.classes
    assert classes == K400_CLASSES  # the train CSV's classes, so labels agree across splits
    assert labels_by_id(records) == {"vvv_000003_000013": 2, "www_000000_000010": 1}
    assert all(r.path.startswith(str(root / "val")) for r in records)

    records = index_dataset("k400", root, k400_ann, "test").records
    assert [(r.video_id, r.label) for r in records] == [("ttt_000000_000010", -1)]


def test_k400_class_folders_with_spaces_or_underscores(k400_ann: Path, tmp_path: Path, seeds):
    root = tmp_path / "k400"
    for label, yid, s, e in K400_TRAIN[:4]:  # <root>/<label_with_underscores>/
        place(seeds, root / label.replace(" ", "_") / f"{k400_name(yid, s, e)}.mp4")
    for label, yid, s, e in K400_VAL:  # <root>/val/<label with spaces>/
        place(seeds, root / "val" / label / f"{k400_name(yid, s, e)}.mp4")

    index = index_dataset("k400", root, k400_ann, "train")
    assert len(index.records) == 4 and index.missing == ["gone_000001_000011"]
    assert labels_by_id(index.records)["bbb_000014_000024"] == 2
    bbb = next(r for r in index.records if r.video_id.startswith("bbb"))
    assert bbb.path == str(root / "passing_American_football_(in_game)" / "bbb_000014_000024.mp4")

    val = index_dataset("k400", root, k400_ann, "validate")  # alias of val
    assert labels_by_id(val.records) == {"vvv_000003_000013": 2, "www_000000_000010": 1} and not val.missing


def test_k400_errors_name_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"data\.source\.annotations .*nowhere: no such folder"):
        index_dataset("k400", tmp_path, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train\.csv.*label,youtube_id"):
        index_dataset("k400", tmp_path, tmp_path / "empty")
    (tmp_path / "train.csv").write_text("label,start\nx,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        index_dataset("k400", tmp_path)
    with pytest.raises(ValueError, match="split"):
        index_dataset("k400", tmp_path, split="holdout")
    with pytest.raises(ValueError, match="format"):
        index_dataset("kinetics", tmp_path)


# --- Something-Something v2 -------------------------------------------------------------------

SSV2_LABELS = {
    "Holding something next to something": "0",
    "Putting something on something": "1",
    "Pushing something from left to right": "2",
}


@pytest.fixture
def ssv2(tmp_path: Path, seeds) -> tuple[Path, Path]:
    root, ann = tmp_path / "videos", tmp_path / "labels"
    ann.mkdir()
    (ann / "something-something-v2-labels.json").write_text(json.dumps(SSV2_LABELS))
    train = [
        {"id": "101", "label": "putting a cup on a plate", "template": "Putting [something] on [something]"},
        {"id": "102", "label": "holding pen next to book", "template": "Holding [something] next to [something]"},
        {"id": "103", "label": "pushing a box", "template": "Pushing [something] from left to right"},
        {"id": "104", "label": "putting a pen on a book", "template": "Putting [something] on [something]"},
        {"id": "999", "label": "absent video", "template": "Putting [something] on [something]"},
    ]
    for item in train:
        item["placeholders"] = ["something"]
    (ann / "something-something-v2-train.json").write_text(json.dumps(train))
    val = [{"id": "201", "label": "x", "template": "Pushing [something] from left to right", "placeholders": []}]
    (ann / "something-something-v2-validation.json").write_text(json.dumps(val))
    (ann / "something-something-v2-test.json").write_text(json.dumps([{"id": "301"}]))
    for vid in ("101", "102", "103", "104", "201", "301"):
        place(seeds, root / f"{vid}.webm")
    return root, ann


def test_ssv2_templates_without_brackets(ssv2):
    root, ann = ssv2
    index = index_dataset("ssv2", root, ann, "train")
    assert index.classes == list(SSV2_LABELS)
    assert labels_by_id(index.records) == {"101": 1, "102": 0, "103": 2, "104": 1}
    assert index.records[0].path == str(root / "101.webm")
    assert index.missing == ["999"]
    assert labels_by_id(index_dataset("ssv2", root, ann, "val").records) == {"201": 2}
    assert labels_by_id(index_dataset("ssv2", root, ann, "test").records) == {"301": -1}  # no templates in test


def test_ssv2_unknown_template_and_missing_json(ssv2, tmp_path: Path):
    root, ann = ssv2
    bad = [{"id": "101", "label": "x", "template": "Spinning [something]"}]
    (ann / "something-something-v2-train.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="Spinning something"):
        index_dataset("ssv2", root, ann)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="labels.json.*template"):
        index_dataset("ssv2", root, tmp_path / "empty")


# --- UCF101 -----------------------------------------------------------------------------------


@pytest.fixture
def ucf(tmp_path: Path, seeds) -> tuple[Path, Path]:
    """classInd says HandstandPushups, the files and disk folder say HandStandPushups (as published)."""
    root, ann = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    ann.mkdir()
    (ann / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    train = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 2",
        "YoYo/v_YoYo_g08_c01.avi 3",
        "YoYo/v_YoYo_g09_c01.avi 3",
    ]
    (ann / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")
    test = ["HandStandPushups/v_HandStandPushups_g01_c01.avi", "YoYo/v_YoYo_g01_c01.avi"]
    (ann / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    for line in train + test:
        rel = line.split()[0].replace("HandstandPushups/", "HandStandPushups/")
        place(seeds, root / rel)
    return root, ann


def test_ucf101_case_insensitive_classes(ucf):
    root, ann = ucf
    index = index_dataset("ucf101", root, ann, "train", fold=1)
    records, classes = index.records, index.classes
    assert classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert labels_by_id(records) == {
        "v_ApplyEyeMakeup_g08_c01": 0,
        "v_HandStandPushups_g08_c01": 1,
        "v_YoYo_g08_c01": 2,
        "v_YoYo_g09_c01": 2,
    }
    assert records[1].path == str(root / "HandStandPushups" / "v_HandStandPushups_g08_c01.avi")
    test = index_dataset("ucf101", root, ann, "test").records
    assert labels_by_id(test) == {"v_HandStandPushups_g01_c01": 1, "v_YoYo_g01_c01": 2}
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        index_dataset("ucf101", root, ann, "train", fold=2)
    with pytest.raises(ValueError, match="fold"):
        index_dataset("ucf101", root, ann, fold=4)


# --- HMDB51 -----------------------------------------------------------------------------------

HMDB = {
    "brush_hair": {"April_brush_hair_u_0": 1, "Brushing_hair_f_1": 2, "brush_unused_2": 0},
    "cartwheel": {"Cartwheel_f_0": 1, "Cartwheel_f_1": 1, "Cartwheel_f_2": 2},
    "catch": {"Catch_f_0": 2, "Catch_f_1": 0, "Catch_f_2": 1},
}


@pytest.mark.parametrize("nested", [True, False])
def test_hmdb51_flags(tmp_path: Path, seeds, nested: bool):
    root, ann = tmp_path / "hmdb51", tmp_path / "splits"
    folder = ann / "testTrainMulti_7030_splits" if nested else ann
    folder.mkdir(parents=True)
    for cls, videos in HMDB.items():
        (folder / f"{cls}_test_split1.txt").write_text("".join(f"{n}.avi {f} \n" for n, f in videos.items()))
        (folder / f"{cls}_test_split2.txt").write_text("".join(f"{n}.avi 1 \n" for n in videos))
        for name in videos:
            place(seeds, root / cls / f"{name}.avi")
    index = index_dataset("hmdb51", root, ann, "train")
    train, classes = index.records, index.classes
    assert classes == ["brush_hair", "cartwheel", "catch"]
    assert labels_by_id(train) == {"April_brush_hair_u_0": 0, "Cartwheel_f_0": 1, "Cartwheel_f_1": 1, "Catch_f_2": 2}
    test = index_dataset("hmdb51", root, ann, "test").records
    assert labels_by_id(test) == {"Brushing_hair_f_1": 0, "Cartwheel_f_2": 1, "Catch_f_0": 2}
    assert test[0].path == str(root / "brush_hair" / "Brushing_hair_f_1.avi")
    assert len(index_dataset("hmdb51", root, ann, "train", fold=2).records) == 9
    with pytest.raises(FileNotFoundError, match="test_split3.txt"):
        index_dataset("hmdb51", root, ann, fold=3)


# --- list files, write_list, CLI -------------------------------------------------------------


def test_list_format_and_write_list_round_trip(tmp_path: Path, seeds):
    videos = [place(seeds, tmp_path / "v" / n) for n in ("a.mp4", "b.avi", "c d.webm")]
    records = [VideoRecord(str(p), i, p.stem) for i, p in enumerate(videos)]
    out = write_list(records[:2], tmp_path / "lists" / "train.csv", ["x", "y", "z"])
    assert out.read_text() == f"{videos[0]} 0\n{videos[1]} 1\n"
    assert (tmp_path / "lists" / "classes.txt").read_text() == "x\ny\nz\n"
    index = index_dataset("list", out)
    assert index.records == records[:2] and index.classes == ["x", "y", "z"]

    spaced = write_list(records, tmp_path / "lists" / "all.csv", ["x", "y", "z"])  # same classes: fine
    assert spaced.read_text().splitlines()[0] == "path,label"
    assert read_video_list(spaced) == ([str(p) for p in videos], [0, 1, 2])
    with pytest.raises(ValueError, match="classes.txt already exists"):
        write_list(records, tmp_path / "lists" / "other.csv", ["p", "q", "r"])

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "val.csv").write_text(f"../v/a.mp4 3\n../v/gone.mp4 1\n{videos[1]} 0\n")
    index = index_dataset("list", bare, split="val")  # <root>/<split>.csv, relative to root
    assert index.classes == ["class_0", "class_1", "class_2", "class_3"]
    assert [(r.path, r.label) for r in index.records] == [(str(videos[0]), 3), (str(videos[1]), 0)]
    assert index.missing == ["gone"]


def test_cli_index_writes_a_list_that_reads_back(ucf, tmp_path: Path, capsys):
    root, ann = ucf
    out = tmp_path / "lists" / "ucf_train.csv"
    args = ["index", "--format", "ucf101", "--root", str(root), "--annotations", str(ann), "--out", str(out)]
    assert main([*args, "--split", "train", "--fold", "1"]) == 0
    printed = capsys.readouterr().out
    assert "4 videos, 3 classes, 0 dropped" in printed and str(out) in printed
    index = index_dataset("ucf101", root, ann, "train")
    records, classes = index.records, index.classes
    assert read_video_list(out) == ([r.path for r in records], [r.label for r in records])
    assert (out.parent / "classes.txt").read_text().splitlines() == classes


def test_cli_index_reports_dropped_and_errors(k400_ann: Path, tmp_path: Path, seeds, capsys):
    root = tmp_path / "k400"
    place(seeds, root / "train" / f"{k400_name('aaa', 0, 10)}.mp4")
    out = tmp_path / "out" / "train.csv"
    base = ["index", "--format", "k400", "--root", str(root), "--annotations", str(k400_ann), "--out", str(out)]
    assert main(base) == 0
    printed = capsys.readouterr().out
    assert "1 videos, 3 classes, 4 dropped (missing files): bbb_000014_000024" in printed
    assert read_video_list(out) == ([str(root / "train" / "aaa_000000_000010.mp4")], [0])
    assert main([*base[:-2], "--out", str(tmp_path / "x.csv"), "--annotations", str(tmp_path / "none")]) == 1
    assert "none: no such folder" in capsys.readouterr().err
    (tmp_path / "none").mkdir()
    assert main([*base[:-2], "--out", str(tmp_path / "x.csv"), "--annotations", str(tmp_path / "none")]) == 1
    assert "train.csv not found" in capsys.readouterr().err


def test_hmdb51_malformed_line(tmp_path: Path):
    (tmp_path / "catch_test_split1.txt").write_text("Catch_f_0.avi 1\nCatch_f_1.avi train\n")
    with pytest.raises(ValueError, match=r"catch_test_split1.txt:2: expected '<name>.avi <0\|1\|2>'"):
        index_dataset("hmdb51", tmp_path)
