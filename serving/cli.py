"""Command line of the serving layer: ``python -m serving --help``.

``package`` puts a trained model into the BentoML model store; ``build`` runs ``bentoml build`` around it. Both
print their result as JSON on stdout and fail with a one-line reason, like ``python -m ml``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ml.cli import configure_logging, emit, run

app = typer.Typer(help="Package trained models into the BentoML model store and build Bentos.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only.")] = False,
) -> None:
    configure_logging(verbose, quiet)


def _settings(run_id: str | None):
    from ml.settings import get_settings

    return get_settings(run_id=run_id)


@app.command("package")
def package_cmd(
    model: Annotated[str | None, typer.Option(help="Model name under models/<run>/ or a family name. "
                                              "Default: the run's champion (needs `python -m ml evaluate` first).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run folder under models/ (default: $SENTIMENT_RUN_ID or 'default').")] = None,
) -> None:
    """Put a trained model into the BentoML model store ($BENTOML_HOME) as tweet-sentiment:<version>."""
    from serving.package import package_model

    emit(package_model(_settings(run_id), model))


@app.command("build")
def build_cmd(
    run_id: Annotated[str | None, typer.Option(help="Run whose settings to use (default: $SENTIMENT_RUN_ID).")] = None,
) -> None:
    """`bentoml build` the service around the latest packaged model; print the Bento's tag."""
    from serving.package import build_bento

    emit({"bento": build_bento(_settings(run_id))})


def main() -> None:
    """Entry point of ``python -m serving``."""
    run(app)
