"""``python -m serving.dashboard [--host H] [--port P] [--home DIR]``: serve the dashboard in the foreground."""

from serving.dashboard.cli import main

main()
