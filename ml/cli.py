"""Command-line interface: ``python -m ml --help``.

Every command reads the artifacts root from ``SENTIMENT_HOME`` (see :mod:`ml.settings`), prints where its
results went, and on failure exits non-zero with a one-line reason.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ml.errors import ConfigError, MLError
from ml.predictor import FAMILIES

app = typer.Typer(
    help="Tweet sentiment platform: download and prepare Sentiment140, train and evaluate models, show settings. "
         "Packaging into BentoML: python -m serving --help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download and prepare the training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

log = logging.getLogger("ml")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only.")] = False,
) -> None:
    configure_logging(verbose, quiet)


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr (stdout carries the commands' JSON results), once, at the entry point."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _settings(**overrides: Any):
    from ml.settings import get_settings

    return get_settings(**{k: v for k, v in overrides.items() if v is not None})


def emit(result: Any) -> None:
    """Print a command's result as JSON on stdout (logs go to stderr), so scripts can read it."""
    typer.echo(json.dumps(result, indent=2, default=str))


@data_app.command("download")
def data_download(
    url: Annotated[str | None, typer.Option(help="http(s):// or file:// URL, or a local path. "
                                            "Default: $SENTIMENT140_URL, else the official Sentiment140 URL.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 of the archive.")] = None,
    md5: Annotated[str | None, typer.Option(help="Expected md5 (the official URL's md5 is checked anyway).")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries after a failed HTTP attempt.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Download and verify the Sentiment140 archive into <home>/data/raw (does nothing if already valid)."""
    from ml.download import download

    settings = _settings(data_url=url)
    path = download(settings.data.url, settings.raw_dir, sha256=sha256, md5=md5,
                    retries=settings.data.download_retries if retries is None else retries, progress=progress)
    emit({"archive": str(path)})


DATASET_HELP = ("Prepared dataset to use: data/processed/<dataset>/ (default: $SENTIMENT_DATASET or 'default'; the "
                "training DAG prepares the neutral-labelled source as 'neutral').")


@data_app.command("prepare")
def data_prepare(
    source: Annotated[str | None, typer.Option(help="A Sentiment140 zip, a labelled CSV/TSV (.gz allowed) or a TweetEval "
                                               "<split>_text.txt (labels and mapping.txt beside it), as a path or URL. "
                                               "Default: the downloaded archive; for --dataset neutral, "
                                               "$SENTIMENT_NEUTRAL_URL.")] = None,
    validation: Annotated[str | None, typer.Option(help="Validate on this labelled file (path or URL) instead of a "
                                                   "random share of the source.")] = None,
    test: Annotated[str | None, typer.Option(help="Test on this labelled file (path or URL) instead of the official "
                                             "test file or a random share of the source.")] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP)] = None,
    text_column: Annotated[str, typer.Option(help="Text column of a labelled file with a header.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of a labelled file with a header.")] = "label",
    seed: Annotated[int | None, typer.Option(help="Split seed (default: $SENTIMENT_SEED or 42).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if this source was already prepared.")] = False,
) -> None:
    """Parse, validate, deduplicate and split the data (no cleaned text in two splits) into parquet files plus
    manifest.json."""
    from ml.data import prepare

    manifest = prepare(_settings(seed=seed, dataset=dataset), source, validation=validation, test=test,
                       text_column=text_column, label_column=label_column, force=force)
    emit({k: manifest[k] for k in ("dataset", "data_version", "rows", "label_counts", "dropped")})


@app.command("train")
def train_cmd(
    family: Annotated[str, typer.Argument(help=f"Model family: one of {', '.join(FAMILIES)}.")],
    max_samples: Annotated[int | None, typer.Option(min=10, help="Train on a seeded stratified sample of N rows.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs (neural families).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (neural families).")] = None,
    model_name: Annotated[str | None, typer.Option(help="Transformer checkpoint name or local directory.")] = None,
    max_length: Annotated[int | None, typer.Option(min=4, help="Sequence length (words for gru/lstm, word pieces for "
                                                               "transformers); default measured to cover 99% of tweets.")] = None,
    learning_rate: Annotated[float | None, typer.Option(min=0.0, help="Peak learning rate (neural families).")] = None,
    grad_accum: Annotated[int | None, typer.Option(min=1, help="Gradient accumulation steps (transformers).")] = None,
    dropout: Annotated[float | None, typer.Option(min=0.0, max=0.9, help="Dropout on embeddings and after each "
                                                  "recurrent layer (GRU/LSTM; default 0, as in the write-up).")] = None,
    compile_mode: Annotated[str | None, typer.Option(help="torch.compile mode on CUDA (transformers): "
                                                     "'reduce-overhead' (default: CUDA graphs) or 'default' (plain "
                                                     "compilation, no graphs).")] = None,
    compile_scope: Annotated[str | None, typer.Option(help="What torch.compile compiles on CUDA (transformers): "
                                                      "'layers' (the repeated encoder layer, compiled once: fast "
                                                      "to compile, slower steps), 'model' (the whole loss as one "
                                                      "graph) or 'auto' (default: layers for runs under 500k "
                                                      "training samples, i.e. epochs x tweets).")] = None,
    embeddings: Annotated[str | None, typer.Option(help="GRU/LSTM: start the embedding from pretrained word "
                                                   "vectors: 'minilm' (offline, the shipped MiniLM's word pieces) "
                                                   "or a GloVe/word2vec text file (.txt or .gz), e.g. "
                                                   "glove.twitter.27B.200d.txt.")] = None,
    teacher: Annotated[str | None, typer.Option(help="GRU/LSTM: distil from this model (a saved model directory, "
                                                "or the name of a model of this run, e.g. minilm, trained on the "
                                                "same classes): learn from its probabilities instead of the "
                                                "labels (see --teacher-weight).")] = None,
    teacher_weight: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="The teacher's share of each "
                                                         "training target, above 0 (default 1: its probabilities "
                                                         "only; the labels have the rest).")] = None,
    init_from: Annotated[str | None, typer.Option(help="GRU/LSTM and transformers: start from this saved model of "
                                                  "the same family (a model directory, or the name of a model of "
                                                  "this run), e.g. one fine-tuned on Sentiment140: its encoder "
                                                  "(GRU/LSTM: vocabulary, embedding, recurrent layers) with a new "
                                                  "head when its classes differ.")] = None,
    class_weight: Annotated[str | None, typer.Option(help="Class weights of the loss: balanced, none, or auto "
                                                     "(balanced for imbalanced three-class data). Default: "
                                                     "$SENTIMENT_CLASS_WEIGHT or auto.")] = None,
    class_priors: Annotated[str | None, typer.Option(help="auto: tune a three-class model's class priors on the "
                                                      "validation split for macro recall; none: keep its own "
                                                      "probabilities. Default: $SENTIMENT_CLASS_PRIORS or auto.")] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP)] = None,
    name: Annotated[str | None, typer.Option(help="Save under this name instead of the family's.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run folder under models/ (default: $SENTIMENT_RUN_ID or 'default').")] = None,
) -> None:
    """Train one model family on the prepared training split and save it under models/<run>/<name>/."""
    from ml.training import train

    if family not in FAMILIES:
        raise MLError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    result = train(family, _settings(run_id=run_id, dataset=dataset, class_weight=class_weight,
                                       class_priors=class_priors), max_samples=max_samples,
                   name=name, epochs=epochs, batch_size=batch_size, model_name=model_name, max_length=max_length,
                   learning_rate=learning_rate, grad_accum=grad_accum, compile_mode=compile_mode,
                   compile_scope=compile_scope, dropout=dropout, embeddings=embeddings, teacher=teacher,
                   teacher_weight=teacher_weight, init_from=init_from)
    emit(result)


def parse_band(value: str) -> tuple[float, float]:
    """``"0.3,0.7"`` (or ``"0.3 0.7"``) as two numbers."""
    parts = value.replace(",", " ").split()
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--band: expected LOW,HIGH such as 0.3,0.7, got {value!r}") from None
    return low, high


@app.command("evaluate")
def evaluate_cmd(
    run_id: Annotated[str | None, typer.Option(help="Run whose models to score (default: $SENTIMENT_RUN_ID or 'default').")] = None,
    band: Annotated[str | None, typer.Option(help="Neutral band LOW,HIGH on P(positive), e.g. 0.3,0.7.")] = None,
    max_samples: Annotated[int | None, typer.Option(min=10, help="Score on a stratified sample of the validation split.")] = None,
    extra: Annotated[list[str] | None, typer.Option(help="Also score every model on this labelled set (repeatable): a "
                                                    "path or URL of a CSV/TSV, a TweetEval <split>_text.txt (or its "
                                                    "folder: the test split), a Sentiment140 csv or zip (its test "
                                                    "file); NAME=REF names the set.")] = None,
) -> None:
    """Score every model of the run on its dataset's validation and test splits (and any --extra set); write
    the leaderboard."""
    from ml.evaluate import evaluate

    overrides: dict[str, Any] = {"run_id": run_id}
    if band is not None:
        overrides.update(zip(("neutral_low", "neutral_high"), parse_band(band), strict=True))
    settings = _settings(**overrides)
    board = evaluate(settings, max_samples=max_samples, extra=extra or ())
    emit({"report": str(settings.reports_dir / "leaderboard.md"),
          "models": [{k: row[k] for k in ("model", "dataset", "accuracy", "macro_recall", "test_accuracy")}
                     for row in board]})


@app.command("config")
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON.")] = False,
    markdown: Annotated[bool, typer.Option(help="Print the settings table of docs/settings.md.")] = False,
) -> None:
    """Print every setting: its variable, value (secrets masked), where the value came from, and its help."""
    from ml.settings import get_settings

    rows = get_settings().describe()
    if as_json:
        emit(rows)
    elif markdown:
        typer.echo(settings_table())
    else:
        width = max(len(row["env"]) for row in rows)
        for row in rows:
            value = "(unset)" if row["value"] is None else row["value"]
            typer.echo(f"{row['env']:<{width}}  {value!s:<28} [{row['source']}]  {row['help']}")


def settings_table() -> str:
    """The Markdown table of every setting (variable, default, meaning) that docs/settings.md shows."""
    from ml.settings import SPECS

    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in SPECS:
        default = "" if spec.default is None else str(spec.default).replace(str(Path.home()), "~")
        meaning = spec.help.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
        lines.append(f"| `{spec.env}` | {f'`{default}`' if default else 'unset'} | {meaning} |")
    return "\n".join(lines)


def run(typer_app: typer.Typer) -> None:
    """Run a Typer app, turning platform errors into one line on stderr and exit code 1."""
    try:
        typer_app(standalone_mode=False)
    except MLError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the unexpected
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


def main() -> None:
    """Entry point of ``python -m ml``."""
    run(app)
