"""``python -m spark_apps.stream status|stop``: read a stream's status file; stop its running driver cleanly.

The job itself starts with spark-submit (``spark-submit --master local[2] spark_apps/stream/job.py --help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_apps.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("status", "stop"), help="status: print status.json (plus driver_alive: "
                        "whether a driver holds the stream's lock); stop: ask the "
                        "running driver to stop after its current micro-batch and wait until it is gone.")
    parser.add_argument("--home", type=Path, help="Artifacts root (default: SENTIMENT_HOME).")
    parser.add_argument("--name", help="Stream name (default: stream.name).")
    parser.add_argument("--timeout", type=float, default=300.0, help="stop: seconds to wait for the driver.")
    args = parser.parse_args(argv)

    from ml.settings import get_settings
    from spark_apps.stream.paths import StreamPaths

    settings = get_settings(home=args.home, stream_name=args.name)
    paths = StreamPaths.for_stream(settings)
    if args.command == "status":
        from spark_apps.stream.lock import is_locked
        from spark_apps.stream.status import read_status

        doc = read_status(paths.status)
        # "running" in a file whose driver is gone means the driver died without writing its last word.
        alive = is_locked(paths.lock)
        out = {**(doc or {"stream": settings.stream.name, "state": "unknown"}), "driver_alive": alive}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0 if doc else 1
    from spark_apps.stream.control import request_stop

    outcome = request_stop(paths.stop_file, paths.lock, timeout=args.timeout)
    sys.stdout.write(json.dumps(outcome) + "\n")
    return 0 if outcome["stopped"] else 1


if __name__ == "__main__":
    sys.exit(main())
