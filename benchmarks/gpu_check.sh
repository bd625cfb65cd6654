#!/usr/bin/env bash
# The prepared GPU check of issue 12 (item 4): one script, under 8 minutes on one GPU.
#
#   benchmarks/gpu_check.sh            # run it (repository root, .venv installed with [triton])
#   benchmarks/gpu_check.sh --dry-run  # print the steps and their time limits, run nothing
#
# Steps (each under its own `timeout`, total of the limits 470 s; a failing step is recorded and
# the next one runs):
#   env         nvidia-smi, torch / CUDA / triton versions
#   tests       the CUDA tests: fused kernel vs the reference loop (compiled for the GPU), VGGSNN
#               under bf16/fp16 autocast, plus every test whose name says cuda/amp/sync_bn/triton
#   amp_bf16    a teacher epoch on the GPU with amp=bf16 (tiny data)
#   amp_fp16    a distillation epoch with amp=fp16 and its GradScaler
#   sync_bn     a distillation epoch under torchrun, one process, sync_bn=true
#   speed       hsd's speed benchmark: VGGSNN-48, batch 64, T = 1,2,4,10, on cuda
#               (variants as hsd.bench.speed defines them)
#   feed        `hsd bench feed` (the feed's wait share) when this hsd has it, else skipped
#   train       a two-epoch teacher + two-epoch distillation, VGGSNN-48 batch 64, on EMULATED
#               data (digits-dvs, hsd's DVS emulator, resized to 48x48, 10 classes)
# Results: $OUT (when set, else gpu-check-out/): one log per step, speed.json, the run folders,
# and summary.json = [{step, rc, seconds, command}] (rc 124: the step ran past its limit).
set -u -o pipefail

DRY=0
if [[ "${1:-}" == "--dry-run" || "${GPU_CHECK_DRY:-0}" == "1" ]]; then DRY=1; fi
BIN=${HSD_BIN:-.venv/bin}
RESULTS=${OUT:-gpu-check-out}
export HSD_CACHE_DIR=${HSD_CACHE_DIR:-$RESULTS/hsd-cache}
TINY=(--set data.dataset=digits-dvs --set data.root=null --set data.limit=256
      --set data.size=[48,48] --set model.name=vggsnn --set device=cuda --set progress=false)
TRAIN=(--config configs/cifar10dvs-vggsnn.yaml --set data.dataset=digits-dvs --set data.root=null
       --set device=cuda --set progress=false --set data.limit=1000)

[[ $DRY == 1 ]] || mkdir -p "$RESULTS"
SUMMARY="$RESULTS/summary.jsonl"
[[ $DRY == 1 ]] || : > "$SUMMARY"
TOTAL=0

step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  TOTAL=$((TOTAL + limit))
  if [[ $DRY == 1 ]]; then
    printf '%-9s %4ss  %s\n' "$name" "$limit" "$*"
    return 0
  fi
  echo "== $name (limit ${limit}s): $*"
  local start rc
  start=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  rc=$?
  local seconds
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  tail -n 5 "$RESULTS/$name.log"
  "$BIN/python" - "$SUMMARY" "$name" "$rc" "$seconds" "$*" <<'PY'
import json, sys
path, name, rc, seconds, command = sys.argv[1:]
with open(path, "a") as f:
    f.write(json.dumps({"step": name, "rc": int(rc), "seconds": float(seconds),
                        "command": command}) + "\n")
PY
  echo "== $name: rc=$rc, ${seconds}s"
}

step env 20 bash -c "nvidia-smi; $BIN/python -c 'import torch, triton; print(torch.__version__, \
torch.version.cuda, torch.cuda.get_device_name(0), triton.__version__)'"
step tests 100 "$BIN/python" -m pytest -q -m "slow or not slow" -p no:cacheprovider \
  tests/models/test_qcfs_triton_cuda.py tests/models/test_qcfs_triton.py \
  -k "cuda or amp or sync_bn or triton or kernel"
step amp_bf16 40 "$BIN/hsd" teacher "${TINY[@]}" --set amp=bf16 --set teacher.optim.epochs=1 \
  --out "$RESULTS/amp-teacher" --force
step amp_fp16 40 "$BIN/hsd" distill --teacher "$RESULTS/amp-teacher" "${TINY[@]}" --set amp=fp16 \
  --set distill.optim.epochs=1 --out "$RESULTS/amp-distill" --force
step sync_bn 50 "$BIN/torchrun" --standalone --nproc_per_node=1 --no-python "$BIN/hsd" distill \
  --teacher "$RESULTS/amp-teacher" "${TINY[@]}" --set sync_bn=true --set distill.optim.epochs=1 \
  --out "$RESULTS/syncbn-distill" --force
step speed 90 "$BIN/python" benchmarks/bench_speed.py --device cuda --networks vggsnn \
  --vgg-batch 64 --steps 1,2,4,10 --vgg-repeats 5 --warmup 2 --out "$RESULTS/speed.json"
if [[ $DRY == 1 ]] || "$BIN/hsd" bench --help 2>/dev/null | grep -qw feed; then
  step feed 30 "$BIN/hsd" bench feed --quick --out "$RESULTS/feed"
else
  echo "== feed: skipped (this hsd has no 'hsd bench feed')"
  echo '{"step": "feed", "rc": null, "seconds": 0, "command": "skipped: no hsd bench feed"}' \
    >> "$SUMMARY"
fi
step train 100 bash -c "'$BIN/hsd' teacher ${TRAIN[*]} --set teacher.optim.epochs=2 \
--out '$RESULTS/train-teacher' --force && '$BIN/hsd' distill --teacher '$RESULTS/train-teacher' \
${TRAIN[*]} --set distill.optim.epochs=2 --out '$RESULTS/train-distill' --force"

if [[ $DRY == 1 ]]; then
  echo "total of the limits: ${TOTAL}s"
  exit 0
fi
"$BIN/python" - "$SUMMARY" "$RESULTS/summary.json" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
failed = [r["step"] for r in rows if r["rc"] not in (0, None)]
print("gpu_check:", "all steps passed" if not failed else f"failed: {', '.join(failed)}")
PY
