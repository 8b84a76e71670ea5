#!/usr/bin/env bash
# This round's one call on a lent GPU (one H200, <= 10 minutes): the GPU check of issue 17, then the KL sweep of
# issue 18 at the series' 24 epochs on the 10,000 shared CelebA images; its AE (weight 0) and tiny-KL VAE (1e-5)
# runs are also issue 17's "24 epochs of the AE and the tiny-KL VAE".
#
# Run from the repository root on the device machine, with
#   .gpu-data/celeba  the shared CelebA images and their attribute file (copied there; ../shared does not travel)
#   .whl              starlette and uvicorn wheels for Python 3.12 (the explorer; the machine has no registry)
# both git-ignored and carried. Results go to $OUT (at most 8 files come back).
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
t0=$(date +%s)
deadline=$((t0 + ${GPU_ROUND_SECONDS:-560}))
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 ZSPACE_CACHE_DIR=/tmp/zspace-cache
CELEBA=$PWD/.gpu-data/celeba
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

python3 benchmarks/gpu_check.py --celeba "$CELEBA" --out "$OUT" --budget "${GPU_CHECK_SECONDS:-200}"

left=$((deadline - $(date +%s)))
echo "kl-sweep: ${left} s left"
SWEEP=/tmp/kl-sweep
timeout "$left" python3 -m zspace study kl-sweep --data "$CELEBA" --out "$SWEEP" --device cuda \
  --set epochs=24 >"$OUT/kl_sweep.log" 2>&1
echo "kl-sweep exit $?"
cp "$SWEEP/metrics.json" "$OUT/kl_sweep_metrics.json" 2>/dev/null
# Whatever finished, even if the sweep ran out of time: each run's last history row.
python3 - "$SWEEP/runs" >"$OUT/kl_sweep_runs.json" <<'PY'
import csv, json, sys
from pathlib import Path
out = {}
for run in sorted(Path(sys.argv[1]).glob("*")):
    hist = run / "history.csv"
    if hist.is_file():
        rows = list(csv.DictReader(hist.open()))
        out[run.name] = {"epochs": len(rows), "last": rows[-1] if rows else None}
print(json.dumps(out, indent=1))
PY
tail -5 "$OUT/kl_sweep.log"
echo "total $(( $(date +%s) - t0 )) s"
