#!/usr/bin/env bash
# Three classes on SemEval-2016 (../shared/data/semeval2016/train.tsv): a held-out random test share (leak-free:
# no cleaned text in two splits) and every lever of docs/models.md#three-classes side by side in one run:
# LogisticRegression unweighted vs balanced; MiniLM from its pretrained weights vs transferred from a MiniLM
# fine-tuned on Sentiment140, weighted vs not; GRU from scratch vs distilled from the three-class MiniLM.
# Prints one JSON line per model (bench/three_class_report.py) with the test split's macro recall, accuracy,
# macro-F1 and Negative recall.
#
#   DATA=../shared/data bash bench/three_class.sh            # ~25 min on 2 CPU cores
#   S140_ROWS=8000 EPOCHS=4 bash bench/three_class.sh        # the knobs (defaults shown)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-${SENTIMENT_SHARED_DATA:-../shared/data}}
S140_ROWS=${S140_ROWS:-8000}
EPOCHS=${EPOCHS:-4}
export SENTIMENT_HOME=${SENTIMENT_HOME:-$(mktemp -d /tmp/three-class.XXXXXX)}
export SENTIMENT_RUN_ID=${SENTIMENT_RUN_ID:-three-class}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TF_CPP_MIN_LOG_LEVEL=2
echo "artifacts: $SENTIMENT_HOME" >&2
t() { local start=$SECONDS; "$@" >&2; echo "{\"step\": \"$*\", \"seconds\": $((SECONDS - start))}" >&2; }

t $PY -m ml data prepare --source "$DATA/sentiment140/trainingandtestdata-sample.zip"
t $PY -m ml data prepare --dataset neutral --source "$DATA/semeval2016/train.tsv"
# the transfer source: MiniLM fine-tuned on Sentiment140 (binary)
t $PY -m ml train minilm --max-samples "$S140_ROWS" --epochs 1
t $PY -m ml train logreg --dataset neutral --class-weight none --name logreg-neutral-unweighted
t $PY -m ml train logreg --dataset neutral --class-weight balanced --name logreg-neutral
t $PY -m ml train minilm --dataset neutral --class-weight balanced --epochs "$EPOCHS" --name minilm-neutral-pretrained
t $PY -m ml train minilm --dataset neutral --class-weight none --epochs "$EPOCHS" --init-from minilm \
    --name minilm-neutral-transfer-unweighted
t $PY -m ml train minilm --dataset neutral --class-weight balanced --epochs "$EPOCHS" --init-from minilm \
    --name minilm-neutral
t $PY -m ml train gru --dataset neutral --class-weight balanced --name gru-neutral
t $PY -m ml train gru --dataset neutral --class-weight balanced --teacher minilm-neutral --name gru-neutral-distilled
t $PY -m ml evaluate
$PY bench/three_class_report.py "$SENTIMENT_HOME/reports/$SENTIMENT_RUN_ID/leaderboard.json"
