"""The live dashboard: the stream, the models and drift, in a Streamlit app (``python -m serving.dashboard``).

* :mod:`serving.dashboard.queries` -- DuckDB over the stream's partitioned parquet (windows, latest posts, profile);
* :mod:`serving.dashboard.summary` -- pure pandas over those small frames (timelines, shares, rolling means);
* :mod:`serving.dashboard.sources` -- the status, supervisor, ingest, report and leaderboard files; stream health;
* :mod:`serving.dashboard.auth` -- loopback by default, a token beyond it (an ASGI middleware);
* :mod:`serving.dashboard.server` -- the ASGI app ``streamlit run`` serves; ``app.py`` and ``page_*.py``: the pages.

Everything here reads files only; it imports :mod:`ml` and nothing above ``serving``. See docs/dashboard.md.
"""
