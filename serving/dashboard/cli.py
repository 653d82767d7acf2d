"""``python -m serving.dashboard``: check the settings, print the URL, then become ``streamlit run`` (headless, no
usage statistics, no file watcher, the bind address and port of the settings) in the foreground until SIGTERM."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from ml.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
SERVER = PACKAGE_DIR / "server.py"

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Serve the live dashboard (stream, models, drift) until SIGTERM. Settings: the dashboard "
                       "section of `python -m ml config`.")


def command(settings) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and environment that serve the dashboard for ``settings``.

    The environment carries the settings given on the command line (home, host, port) to the server process and
    puts this repository first on ``PYTHONPATH``; the token stays in the environment, never on the command line.
    """
    dash = settings.dashboard
    cmd = [sys.executable, "-m", "streamlit", "run", str(SERVER),
           "--server.address", dash.host, "--server.port", str(dash.port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false",
           "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
           "--theme.base", "light"]
    env = dict(os.environ)
    env.update({"SENTIMENT_HOME": str(settings.home), "SENTIMENT_DASHBOARD_HOST": dash.host,
                "SENTIMENT_DASHBOARD_PORT": str(dash.port), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *(p for p in path.split(os.pathsep) if p)])
    return cmd, env


def url(settings) -> str:
    """Where a browser on this machine (or, for an open address, elsewhere) reaches the dashboard."""
    host = settings.dashboard.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "localhost") else socket.gethostname() if host == "::" else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{settings.dashboard.port}/"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: dashboard_host, 127.0.0.1). Any "
                                             "non-loopback address needs SENTIMENT_DASHBOARD_TOKEN.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: dashboard_port, 8501).")] = None,
    home: Annotated[Path | None, typer.Option(help="Artifacts root to read (default: SENTIMENT_HOME).")] = None,
) -> None:
    """Serve the dashboard in the foreground; SIGTERM stops it."""
    from ml.settings import get_settings
    from serving.dashboard.auth import check_bind

    settings = get_settings(dashboard_host=host, dashboard_port=port, home=home)
    token = settings.dashboard.token
    check_bind(settings.dashboard.host, token.get_secret_value() if token else None)
    cmd, env = command(settings)
    note = " (sign in with SENTIMENT_DASHBOARD_TOKEN)" if token else ""
    typer.echo(f"dashboard: {url(settings)}{note}  home {settings.home}", err=False)
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)


def main() -> None:
    try:
        app(standalone_mode=False)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
