#!/usr/bin/env bash
# Train every fold of the k-fold protocol from one image pack, on CUDA when present, else the CPU.
#
#   scripts/gpu_train_folds.sh PACK OUT [pneumoviewer train arguments ...]
#
# PACK is an image pack (scripts/campaign.py pack --size 384 --codec jpeg90 --out PACK): labels and
# uint8 pixels at the input size in one .npz, so no data folder or cache is needed. Each fold trains
# in OUT/fold<I> with --resume (a rerun continues), logging to OUT/campaign.jsonl; the input size is
# the pack's. `select_device` picks CUDA when there is one, and training uses AMP there.
# Environment: FOLDS (default 5), FOLD_LIST (default all: "0 1 2 3 4"), PYTHON (default python3),
# BUNDLE (a folder: the fold models, cards and log are also written there as 15 MB tar parts,
# to bring back from a machine that returns small files; join with `cat BUNDLE/folds.tar.part-* | tar x`).
# docs/model.md, "Training campaign", shows how to build the pack and carry it to a GPU machine.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
pack=$1
out=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
folds=${FOLDS:-5}
fold_list=${FOLD_LIST:-$(seq 0 $((folds - 1)))}
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
size=$("$python" -c 'import numpy, sys; print(int(numpy.load(sys.argv[1])["size"]))' "$pack")
"$python" -c 'import torch; print("device:", f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu")'
mkdir -p "$out"
for fold in $fold_list; do
  echo "fold $fold of $folds (${size}px) -> $out/fold$fold"
  "$python" -m pneumoviewer train --pack "$pack" --input-size "$size" --folds "$folds" --fold "$fold" \
    --out "$out/fold$fold" --resume --log-file "$out/campaign.jsonl" "$@"
done
if [ -n "${BUNDLE:-}" ]; then
  mkdir -p "$BUNDLE"
  (cd "$out" && tar -cf - campaign.jsonl fold*/model.safetensors fold*/model.json fold*/progress.json) \
    | split -b 15m - "$BUNDLE/folds.tar.part-"
fi
