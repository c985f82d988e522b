"""``smile-eval-ava``: AVA frame-mAP with the official ActivityNet tool's flags.

    smile-eval-ava -l LABELMAP -g GROUNDTRUTH_CSV -d DETECTIONS_CSV [-e EXCLUSIONS_CSV] [--json OUT]

Prints ``mAP@0.5IOU`` and one ``AP@0.5IOU/<class>`` line per class of the label map (the official tool's
metric names; ``nan`` for a class without ground truth, which the mean leaves out). ``--json`` writes
``{"mAP", "per_class", "num_groundtruth"}`` with ``null`` for NaN. A missing or malformed input exits
with code 2 and one line naming it. See :mod:`smile.metrics.ava` for the exact semantics.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from smile.metrics.ava import evaluate_ava


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flags of ActivityNet's ``get_ava_performance.py`` plus ``--json``).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(prog="smile-eval-ava", description="AVA frame-mAP@0.5IOU (official semantics).")
    p.add_argument("-l", "--labelmap", required=True, help="label map .pbtxt (the evaluated classes)")
    p.add_argument("-g", "--groundtruth", required=True, help="ground-truth CSV")
    p.add_argument("-d", "--detections", required=True, help="detections CSV (8th column: score)")
    p.add_argument("-e", "--exclusions", default=None, help="excluded timestamps CSV")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the metrics as JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation and print one line per metric.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        0 on success, 2 on a missing or malformed input.
    """
    args = build_parser().parse_args(argv)
    try:
        metrics = evaluate_ava(args.labelmap, args.groundtruth, args.detections, args.exclusions)
    except (OSError, ValueError) as e:
        msg = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
        print(f"smile-eval-ava: error: {msg}".replace("\n", " "), file=sys.stderr)
        return 2
    print(f"mAP@0.5IOU: {metrics['mAP']:.6f}")
    for name, ap in metrics["per_class"].items():
        print(f"AP@0.5IOU/{name}: {ap:.6f}")
    if args.json:
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_jsonable(metrics), f, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
