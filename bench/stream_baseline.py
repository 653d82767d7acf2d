"""The write-up's streaming design, measured as the baseline of ``bench/stream.py``.

A socket source (one JSON post per line), a Python UDF making ONE HTTP call PER ROW to a one-text Flask endpoint
(``bench/serving.py``'s baseline server, the same model), a parquet sink with a checkpoint. Run under spark-submit::

    spark-submit --master local[*] bench/stream_baseline.py --port P --url http://127.0.0.1:F/predict \
        --output DIR --checkpoint DIR

It runs until it is killed (the benchmark sends SIGTERM once it has counted the output). :class:`SocketFeeder`
is the other end of the socket: it serves the posts to the first connection, as a bridge relaying a stream would.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time


class SocketFeeder(threading.Thread):
    """Listen on a free loopback port and serve the first client: ``warmup()``'s lines at once, then, when
    :meth:`go` is called, ``lines()``'s (each built when sent, so their ``ingest_ts`` is the sending time)."""

    def __init__(self, warmup, lines) -> None:
        super().__init__(daemon=True)
        self.warmup, self.lines = warmup, lines
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.first_sent: float | None = None
        self._go = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.sendall("".join(line + "\n" for line in self.warmup()).encode())
            self._go.wait()
            self.first_sent = time.time()
            conn.sendall("".join(line + "\n" for line in self.lines()).encode())
            self._done.wait()
        self.server.close()

    def go(self) -> None:
        self._go.set()

    def close(self) -> None:
        self._go.set()
        self._done.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="Socket source port on 127.0.0.1.")
    parser.add_argument("--url", required=True, help="The one-text endpoint (POST {'text': ...}).")
    parser.add_argument("--output", required=True, help="Parquet output folder.")
    parser.add_argument("--checkpoint", required=True, help="Checkpoint folder.")
    parser.add_argument("--trigger-seconds", type=float, default=1.0, help="Micro-batch interval.")
    args = parser.parse_args()

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("stream-baseline").config("spark.ui.showConsoleProgress", "false") \
        .config("spark.sql.session.timeZone", "UTC").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    url = args.url

    @F.udf("string")
    def label(text: str) -> str:
        import requests

        return requests.post(url, json={"text": text}, timeout=60).json()["label"]

    lines = spark.readStream.format("socket").option("host", "127.0.0.1").option("port", args.port).load()
    posts = lines.select(F.from_json("value", "id string, text string, ingest_ts string").alias("p")).select("p.*")
    scored = posts.withColumn("label", label("text")).withColumn("scored_ts", F.current_timestamp())
    query = (scored.writeStream.format("parquet").option("path", args.output)
             .option("checkpointLocation", args.checkpoint)
             .trigger(processingTime=f"{args.trigger_seconds:g} seconds").start())
    query.awaitTermination()


if __name__ == "__main__":
    main()
