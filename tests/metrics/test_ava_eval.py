"""AVA frame-mAP (official ActivityNet evaluator semantics) on hand-computed cases."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from smile.cli.eval_ava import main
from smile.metrics.ava import evaluate_ava, read_boxes, read_exclusions, read_labelmap

# Written exactly as the published ava_action_list_v2.2_for_activitynet_2019.pbtxt (first three items).
LABELMAP = """item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "crouch/kneel"
  id: 3
}
item {
  name: "dance"
  id: 4
}
"""
BEND, CROUCH, DANCE = "bend/bow (at the waist)", "crouch/kneel", "dance"
LM = {1: BEND, 3: CROUCH, 4: DANCE}
G1 = ("0.077", "0.151", "0.283", "0.811")  # x1, y1, x2, y2
G2 = ("0.332", "0.194", "0.481", "0.891")
FAR = ("0.800", "0.000", "0.900", "0.100")  # disjoint from G1, G2


def gt(video: str, ts: str, box: tuple[str, ...], action: int, person: int = 0) -> list[str]:
    return [video, ts, *box, str(action), str(person)]


def det(video: str, ts: str, box: tuple[str, ...], action: int, score: float) -> list[str]:
    return [video, ts, *box, str(action), f"{score}"]


def test_readers_published_formats(tmp_path: Path) -> None:
    (tmp_path / "lm.pbtxt").write_text(LABELMAP)
    assert read_labelmap(tmp_path / "lm.pbtxt") == LM
    (tmp_path / "one_line.pbtxt").write_text('item { name: "bend/bow (at the waist)" id: 1 }\n')
    assert read_labelmap(tmp_path / "one_line.pbtxt") == {1: BEND}
    # ava_val_v2.2.csv: 8 columns (person id); 7 columns also accepted; action 2 is not evaluated.
    (tmp_path / "gt.csv").write_text(
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1\n1j20qq1JyX4,0905,0.1,0.2,0.3,0.4,1\n"
    )
    rows = read_boxes(tmp_path / "gt.csv", detections=False, class_ids=[1])
    assert rows == [(("1j20qq1JyX4", 905), (0.2, 0.1, 0.4, 0.3), 1, 1.0)]
    (tmp_path / "ex.csv").write_text("-5KQ66BBWC4,0902\n-5KQ66BBWC4,0903\n")
    assert read_exclusions(tmp_path / "ex.csv") == {("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 903)}


@pytest.mark.parametrize(
    ("name", "text", "kind", "line"),
    [
        ("gt.csv", "v,0902,0.1,0.2,0.3,0.4,1,1\nv,0902,0.1,0.2,0.3,1\n", "gt", 2),  # 6 columns
        ("gt.csv", "v,09x2,0.1,0.2,0.3,0.4,1\n", "gt", 1),  # timestamp not an int
        ("det.csv", "v,0902,0.1,0.2,0.3,0.4,1,0.9\nv,0902,0.1,0.2,0.3,0.4,1\n", "det", 2),  # score missing
        ("det.csv", "v,0902,0.1,0.2,0.3,0.4,1,nan\n", "det", 1),
        ("det.csv", "v,0902,0.5,0.2,0.3,0.4,1,0.9\n", "det", 1),  # x2 < x1
        ("ex.csv", "v,0902\nv,0902,1\n", "ex", 2),
        ("lm.pbtxt", 'item {\n  name: "a"\n  id: one\n}\n', "lm", 3),
        ("lm.pbtxt", 'item {\n  name: "a"\n}\n', "lm", 3),  # no id at the closing brace
    ],
)
def test_malformed_names_file_and_line(tmp_path: Path, name: str, text: str, kind: str, line: int) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{name}:{line}:"):
        if kind == "lm":
            read_labelmap(path)
        elif kind == "ex":
            read_exclusions(path)
        else:
            read_boxes(path, detections=kind == "det")


def test_perfect_detection_is_ap_one() -> None:
    g = [gt("vid_a", "0902", G1, 1), gt("vid_b", "0903", G2, 1, 1)]
    d = [det("vid_a", "0902", G1, 1, 0.6), det("vid_b", "0903", G2, 1, 0.3)]
    out = evaluate_ava(LM, g, d)
    assert out["per_class"][BEND] == 1.0
    # crouch and dance have no ground truth: NaN and left out of the mean.
    assert math.isnan(out["per_class"][CROUCH]) and math.isnan(out["per_class"][DANCE])
    assert out["mAP"] == 1.0 and out["num_groundtruth"] == {BEND: 2, CROUCH: 0, DANCE: 0}


def test_ties_broken_by_video_then_timestamp_then_box() -> None:
    g = [gt("vid_a", "0902", G1, 1), gt("vid_b", "0902", G2, 1)]
    # Both at 0.9; the TP (vid_a) ranks first by video id: precision [1, 1/2], recall [1/2, 1/2] -> AP = 1/2 * 1.
    d = [det("vid_b", "0902", FAR, 1, 0.9), det("vid_a", "0902", G1, 1, 0.9)]
    assert evaluate_ava(LM, g, d)["per_class"][BEND] == pytest.approx(0.5)
    # Same scores, FP now in the earlier video: precision [0, 1/2], recall [0, 1/2] -> AP = 1/2 * 1/2.
    g = [gt("vid_c", "0902", G1, 1), gt("vid_b", "0902", G2, 1)]
    d = [det("vid_b", "0902", FAR, 1, 0.9), det("vid_c", "0902", G1, 1, 0.9)]
    assert evaluate_ava(LM, g, d)["per_class"][BEND] == pytest.approx(0.25)


def test_duplicate_detection_of_one_gt_is_false_positive() -> None:
    g = [gt("vid_a", "0902", G1, 1), gt("vid_b", "0902", G2, 1)]
    d = [det("vid_a", "0902", G1, 1, 0.9), det("vid_a", "0902", G1, 1, 0.8), det("vid_b", "0902", G2, 1, 0.7)]
    # TP, FP (G1 already taken), TP: precision [1, 1/2, 2/3] -> monotone [1, 2/3, 2/3], recall [1/2, 1/2, 1]
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    assert evaluate_ava(LM, g, d)["per_class"][BEND] == pytest.approx(5 / 6)


def test_best_iou_box_taken_gives_false_positive_without_fallback() -> None:
    a, b = ("0.0", "0.0", "0.5", "1.0"), ("0.1", "0.0", "0.6", "1.0")  # IoU(a, b) = 0.4 / 0.6 = 2/3
    g = [gt("v", "0902", a, 1), gt("v", "0902", b, 1, 1)]
    # Both detections equal a: the first takes a, the second's best is a again -> FP even though IoU(b) >= 0.5.
    d = [det("v", "0902", a, 1, 0.9), det("v", "0902", a, 1, 0.8)]
    # precision [1, 1/2], recall [1/2, 1/2] -> AP = 1/2.
    assert evaluate_ava(LM, g, d)["per_class"][BEND] == pytest.approx(0.5)


def test_class_without_gt_is_nan_and_excluded_from_map() -> None:
    g = [gt("v", "0902", G1, 1), gt("v", "0902", G2, 3)]
    # bend: FP 0.9 then TP 0.8 -> precision [0, 1/2], recall [0, 1] -> AP 1/2; crouch: perfect -> 1; dance: no GT.
    d = [det("v", "0902", FAR, 1, 0.9), det("v", "0902", G1, 1, 0.8)]
    d += [det("v", "0902", G2, 3, 0.5), det("v", "0902", G2, 4, 0.99)]
    out = evaluate_ava(LM, g, d)
    assert out["per_class"][BEND] == pytest.approx(0.5) and out["per_class"][CROUCH] == 1.0
    assert math.isnan(out["per_class"][DANCE])
    assert out["mAP"] == pytest.approx((0.5 + 1.0) / 2)


def test_class_with_gt_but_no_detection_is_zero() -> None:
    out = evaluate_ava(LM, [gt("v", "0902", G1, 1), gt("v", "0902", G1, 3)], [det("v", "0902", G1, 1, 0.5)])
    assert out["per_class"][CROUCH] == 0.0 and out["mAP"] == pytest.approx(0.5)


def test_excluded_timestamps_removed_from_both() -> None:
    g = [gt("v", "0902", G1, 1), gt("v", "0903", G2, 1)]
    d = [det("v", "0903", FAR, 1, 0.95), det("v", "0902", G1, 1, 0.9)]
    # Without exclusion: FP, TP with 2 GT -> precision [0, 1/2], recall [0, 1/2] -> AP 1/4.
    assert evaluate_ava(LM, g, d)["per_class"][BEND] == pytest.approx(0.25)
    # Excluding (v, 903) drops its GT and its FP: one GT, one TP -> AP 1.
    assert evaluate_ava(LM, g, d, [["v", "0903"]])["per_class"][BEND] == 1.0


def test_iou_exactly_half_is_true_positive() -> None:
    g = [gt("v", "0902", ("0.0", "0.0", "0.5", "1.0"), 1)]  # area 0.5
    # [0, 0.25] x [0, 1]: intersection 0.25, union 0.5 -> IoU exactly 0.5 (exact in binary) -> TP, AP 1.
    assert evaluate_ava(LM, g, [det("v", "0902", ("0.0", "0.0", "0.25", "1.0"), 1, 0.9)])["mAP"] == 1.0
    # x2 = 0.2499 -> IoU 0.4998 -> FP, AP 0.
    assert evaluate_ava(LM, g, [det("v", "0902", ("0.0", "0.0", "0.2499", "1.0"), 1, 0.9)])["mAP"] == 0.0


def test_top_50_detections_per_image() -> None:
    g = [gt("v", "0902", G1, 1)]
    d = [det("v", "0902", FAR, 1, 0.9) for _ in range(50)] + [det("v", "0902", G1, 1, 0.1)]
    # The TP is the 51st by score: dropped by the official cap -> AP 0; without the cap precision 1/51 at recall 1.
    assert evaluate_ava(LM, g, d)["mAP"] == 0.0
    assert evaluate_ava(LM, g, d, max_detections_per_image=0)["mAP"] == pytest.approx(1 / 51)


def test_invariant_to_row_order() -> None:
    rng = random.Random(0)
    boxes = [G1, G2, FAR, ("0.1", "0.2", "0.3", "0.8")]
    g = [
        gt(f"vid{v}", f"{t:04d}", rng.choice(boxes), rng.choice([1, 3, 4]), p)
        for v in range(3)
        for t in range(900, 904)
        for p in range(2)
    ]
    d = [
        det(
            f"vid{rng.randrange(3)}",
            f"{rng.randrange(900, 904):04d}",
            rng.choice(boxes),
            rng.choice([1, 2, 3, 4]),
            rng.choice([0.2, 0.5, 0.9]),
        )
        for _ in range(120)
    ]
    ex = [["vid0", "0901"]]
    ref = evaluate_ava(LM, g, d, ex)
    assert 0.0 < ref["mAP"] < 1.0
    for _ in range(5):
        rng.shuffle(g)
        rng.shuffle(d)
        assert evaluate_ava(LM, g, d, ex) == ref


def _write(tmp_path: Path, rows: list[list[str]], name: str) -> Path:
    path = tmp_path / name
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    return path


def test_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lm.pbtxt").write_text(LABELMAP)
    g = _write(tmp_path, [gt("-5KQ66BBWC4", "0902", G1, 1, 0), gt("-5KQ66BBWC4", "0903", G2, 1, 1)], "gt.csv")
    d = _write(tmp_path, [det("-5KQ66BBWC4", "0902", G1, 1, 0.9), det("-5KQ66BBWC4", "0903", FAR, 1, 0.95)], "det.csv")
    ex = _write(tmp_path, [["-5KQ66BBWC4", "0903"]], "ex.csv")
    out_json = tmp_path / "m.json"
    args = ["-l", str(tmp_path / "lm.pbtxt"), "-g", str(g), "-d", str(d), "-e", str(ex), "--json", str(out_json)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mAP@0.5IOU: 1.000000"
    assert lines[1:] == [f"AP@0.5IOU/{BEND}: 1.000000", f"AP@0.5IOU/{CROUCH}: nan", f"AP@0.5IOU/{DANCE}: nan"]
    data = json.loads(out_json.read_text())
    assert data["mAP"] == 1.0 and data["per_class"] == {BEND: 1.0, CROUCH: None, DANCE: None}


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lm.pbtxt").write_text(LABELMAP)
    g = _write(tmp_path, [gt("v", "0902", G1, 1)], "gt.csv")
    d = _write(tmp_path, [det("v", "0902", G1, 1, 0.9), ["v", "0902", "0.1"]], "det.csv")
    assert main(["-l", str(tmp_path / "lm.pbtxt"), "-g", str(g), "-d", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{d}:2:" in err
    assert main(["-l", str(tmp_path / "missing.pbtxt"), "-g", str(g), "-d", str(d)]) == 2
    assert "missing.pbtxt" in capsys.readouterr().err
