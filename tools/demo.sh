#!/usr/bin/env bash
# The offline demo (`make demo`, after the Makefile has set up .venv): toy data in VOC layout,
# a narrow FCN-8s trained on the CPU with tools/train.py, evaluated with tools/test.py (pixel
# acc., mean acc., mean IU, f.w. IU), and overlays image | ground truth | prediction written by
# tools/infer.py. Nothing is downloaded. About 5-10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CONFIG=configs/fcn8s_vgg16-tiny_toyvoc.py
WORK=work_dirs/fcn8s_vgg16-tiny_toyvoc

echo "== 1/4 toy dataset (data/toy)"
"$PY" tools/dataset_converters/make_toy_voc.py

echo "== 2/4 training $CONFIG on the CPU (log: $WORK)"
start=$(date +%s)
# --resume: a second `make demo` continues (or reuses) this work dir's run instead of being
# refused for starting a new run on an earlier run's checkpoints
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" --resume
echo "training took $(( $(date +%s) - start )) s"
CKPT=$(cat "$WORK/last_checkpoint")

echo "== 3/4 evaluation on the toy val split"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" 2>&1 | tee "$WORK/test.log"

echo "== 4/4 overlays: image | ground truth | prediction"
INPUTS="$WORK/demo_inputs"
mkdir -p "$INPUTS"
head -n 8 data/toy/ImageSets/Segmentation/val.txt | while read -r name; do
  cp "data/toy/JPEGImages/$name.jpg" "$INPUTS/"
done
"$PY" tools/infer.py "$CONFIG" "$CKPT" "$INPUTS" --out "$WORK/overlays" \
  --gt-dir data/toy/SegmentationClass --overwrite

echo
echo "== demo done"
grep "FCN metrics" "$WORK/test.log" | tail -n 1 | sed 's/.*INFO - //' || true
echo "checkpoint: $CKPT"
echo "overlays:   $WORK/overlays/<name>.jpg_overlay.png (image | ground truth | prediction)"
echo "labels:     $WORK/overlays/<name>.jpg.png (predicted class indices, VOC palette)"
