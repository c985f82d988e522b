#!/usr/bin/env bash
# One short GPU session (issue 6): the gpu-marked tests, then the ViT-B SMILE step benchmark of
# PERFORMANCE.md (random clips, 48 clips per step, 2 masks per clip, CLIP ViT-B/16 teacher once per
# clip), eager and compiled, and the overlay/masking benchmark. Results land in $OUT (or ./bench-results).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-results}"
mkdir -p "$OUT"
make setup >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/python -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tail -5 | tee "$OUT/gpu_tests.txt"
# a random-weight CLIP ViT-B/16 tower file: the step's cost does not depend on the weights' values
.venv/bin/python -c "import torch; from smile.teachers.clip import build_clip_visual; \
torch.save(build_clip_visual(768, 12, 12, 16, 224).state_dict(), '$OUT/clip_b16_random.pt')"
STEP=(experiment=smile_k400_vitb_stage1 data/motion/bank=procedural "model.teacher.path=$OUT/clip_b16_random.pt"
      data.train_dataset.list_file=/dev/null data.batch_size=48)
.venv/bin/smile-bench step "${STEP[@]}" --steps 10 --json "$OUT/step_eager.json"
.venv/bin/smile-bench step "${STEP[@]}" --steps 10 --compile --json "$OUT/step_compiled.json"
.venv/bin/smile-bench motion --batch 48 --json "$OUT/motion_gpu.json"
.venv/bin/smile-bench data experiment=demo --batches 8 --json "$OUT/data_demo.json"
