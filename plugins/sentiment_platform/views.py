"""A read-only page for the Airflow UI: the leaderboards the training DAG wrote under ``$SENTIMENT_HOME/reports``.

Mounted by :mod:`sentiment_platform_plugin` at ``/sentiment`` of the Airflow API server:

* ``/sentiment/leaderboard``: the newest run's leaderboard (``?run=<run id>`` picks another) and the run list;
* ``/sentiment/reports/<run>/<file>``: a report file (``leaderboard.png``, ``leaderboard.json``, ``run.json``...).

Both need Airflow's own login, like the rest of the API server: the UI's session cookie or an
``Authorization: Bearer`` token from ``/auth/token`` (Airflow's ``get_user`` dependency), and the auth manager's
permission for the custom view :data:`RESOURCE`. Without a login, a browser is sent to Airflow's login page (and
comes back), any other client gets 401. It only reads files; everything it shows was computed by ``ml.evaluate``.
The live view of the stream, the models and drift is the dashboard (``python -m serving.dashboard``).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

#: The custom view the auth manager is asked about (``is_authorized_custom_view``).
RESOURCE = "Sentiment reports"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
COLUMNS = ("model", "family", "dataset", "accuracy", "f1", "macro_recall", "test_accuracy", "test3_macro_f1",
           "test3_macro_recall", "train_seconds", "n_train")


def authorized(user: GetUserDep) -> None:
    """Airflow's login (401 without one) and the auth manager's permission to read the reports (else 403)."""
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE, user=user):
        raise HTTPException(403, "Forbidden")


app = FastAPI(title="Sentiment platform reports", docs_url=None, redoc_url=None, openapi_url=None,
              dependencies=[Depends(authorized)])


@app.exception_handler(HTTPException)
async def _login_first(request: Request, exc: HTTPException):
    """A browser without a login goes to Airflow's login page, which brings it back here; others get the error."""
    if exc.status_code == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(get_auth_manager().get_url_login(next_url=target), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def reports_root() -> Path:
    from ml.settings import get_settings

    return get_settings().reports_root


def runs_with_leaderboard() -> list[str]:
    """Run ids that have a leaderboard, newest first."""
    root = reports_root()
    boards = root.glob("*/leaderboard.json") if root.is_dir() else []
    return [p.parent.name for p in sorted(boards, key=lambda p: p.stat().st_mtime, reverse=True)]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape("" if value is None else str(value))


@app.get("/leaderboard", response_class=HTMLResponse)
def leaderboard(run: str | None = None) -> str:
    runs = runs_with_leaderboard()
    if not runs:
        return "<h2>No leaderboard yet</h2><p>Trigger the <code>sentiment140_training</code> DAG.</p>"
    run = run or runs[0]
    if run not in runs:
        raise HTTPException(404, f"no leaderboard for run {run!r}")
    rows = json.loads((reports_root() / run / "leaderboard.json").read_text())
    record_path = reports_root() / run / "run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in COLUMNS) + "</tr>" for r in rows)
    links = "".join(f'<li><a href="leaderboard?run={html.escape(r)}">{html.escape(r)}</a></li>' for r in runs)
    facts = {k: record.get(k) for k in ("dag_run_id", "status", "data_version", "champion", "model_tag",
                                         "failed_families") if k in record}
    return (
        "<html><head><title>Sentiment leaderboard</title><style>body{font-family:sans-serif;margin:2em}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:left}</style></head><body>"
        f"<h2>Leaderboard of run {html.escape(run)}</h2><pre>{html.escape(json.dumps(facts, indent=2))}</pre>"
        f"<table><tr>{head}</tr>{body}</table>"
        f'<p><img src="reports/{html.escape(run)}/leaderboard.png" style="max-width:900px"></p>'
        f'<p><a href="reports/{html.escape(run)}/leaderboard.md">leaderboard.md</a> · '
        f'<a href="reports/{html.escape(run)}/leaderboard.json">leaderboard.json</a> · '
        f'<a href="reports/{html.escape(run)}/run.json">run.json</a></p>'
        f"<h3>Runs</h3><ul>{links}</ul></body></html>"
    )


@app.get("/reports/{run}/{name}")
def report_file(run: str, name: str) -> FileResponse:
    if not (_SAFE.match(run) and _SAFE.match(name)):
        raise HTTPException(404, "not found")
    path = reports_root() / run / name
    if not path.is_file():
        raise HTTPException(404, "not found")
    media = "text/plain; charset=utf-8" if path.suffix == ".md" else None
    return FileResponse(path, media_type=media)
