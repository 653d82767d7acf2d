"""The live dashboard: the stream, the models and drift, in a Streamlit app (``python -m serving.dashboard``).

* :mod:`~serving.dashboard.layout` -- the partition folders of a stream's output (keys, dates, files);
* :mod:`~serving.dashboard.queries` -- DuckDB over that parquet: windows, latest posts, the live drift profile;
* :mod:`~serving.dashboard.cache` -- what the queries keep between refreshes (incremental live days, older days);
* :mod:`~serving.dashboard.summary` -- pure pandas over the queries' small frames (timelines, shares, rolling means);
* :mod:`~serving.dashboard.sources` -- the status, supervisor, ingest, report and leaderboard files; stream health;
* :mod:`~serving.dashboard.auth` -- loopback by default, a token beyond it (an ASGI middleware);
* :mod:`~serving.dashboard.cli` -- the entry point; ``server.py`` -- the ASGI app ``streamlit run`` serves;
* ``app.py``, ``ui.py``, ``page_live.py``, ``page_models.py``, ``page_drift.py`` -- the Streamlit pages.

Everything here reads files only; it imports :mod:`ml` and nothing above ``serving``. See docs/dashboard.md.
"""
