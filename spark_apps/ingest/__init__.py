"""The ingest bridge: posts from a source (replay, X, Bluesky) into the stream's landing folder, as atomic
newline-delimited JSON files the Spark job reads (or a TCP socket). ``python -m spark_apps.ingest --help``.

Modules, one job each: ``records`` (the landing record), ``readers`` (recorded-post files), ``replay``, ``x``,
``bluesky`` (the sources), ``sinks`` (files, socket), ``state`` (state.json, status.json), ``runner`` (the loop),
``app`` (assembly from the settings), ``cli``. Nothing heavy is imported here.
"""
