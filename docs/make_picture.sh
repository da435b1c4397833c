#!/usr/bin/env bash
# Makes docs/images/demo_prediction.png: a held-out synthetic scene beside
# the demo model's labelled prediction (pdl-predict --labels --side_by_side).
# Trains nothing: it needs the exported demo model (docs/images/README.md):
#   pdl-train --experiment demo
#   pdl-export --experiment demo --checkpoint runs/demo --output exports/demo
# Usage: docs/make_picture.sh [SCENE_INDEX (default 3)] [MODEL (default
# exports/demo)], from anywhere; writes into this repository's docs/images.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scene="${1:-3}"
model="${2:-$root/exports/demo}"
if [ ! -e "$model" ]; then
  echo "make_picture.sh: no exported model at $model; run first:" >&2
  echo "  pdl-train --experiment demo" >&2
  echo "  pdl-export --experiment demo --checkpoint runs/demo --output exports/demo" >&2
  exit 2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The validation scene the demo is evaluated on (128 x 128), shown 2x
# (nearest neighbour: the same pixels, room for the labels); the model fits
# it back to its 128 x 128 input.
python - "$work" "$scene" <<'PY'
import sys
from PIL import Image
from pdl_tf.data.readers import synthetic
folder, index = sys.argv[1], int(sys.argv[2])
image, _ = synthetic.make_scene(synthetic.SPLIT_SEEDS['validation'] + index)
Image.fromarray(image).resize((256, 256), Image.NEAREST).save(
    f'{folder}/validation_{index:06d}.png')
PY
pdl-predict "$work/validation_$(printf %06d "$scene").png" \
  --saved_model "$model" --output "$work/out" --labels --side_by_side
mkdir -p "$root/docs/images"
cp "$work/out/validation_$(printf %06d "$scene")_side_by_side.png" \
  "$root/docs/images/demo_prediction.png"
echo "wrote $root/docs/images/demo_prediction.png"
