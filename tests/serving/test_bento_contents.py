"""The Bento ships exactly what the service imports: the service and every model family it may load (lazy imports
included), not the CLI, the pipeline steps, the downloader or the dashboard."""

from __future__ import annotations

from pathlib import Path

import yaml

from ml.predictor import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def service_files() -> set[str]:
    """The files of the modules reachable from the service and the family classes in the import graph."""
    import grimp

    graph = grimp.build_graph("ml", "serving", include_external_packages=False)
    seen, todo = set(), ["serving.service", *{v.split(":")[0] for v in FAMILIES.values()}]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph.find_modules_directly_imported_by(module)
    files = set()
    for module in seen:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it
            path = ROOT.joinpath(*parts[:i])
            if path.is_dir():
                files.add((path / "__init__.py").relative_to(ROOT).as_posix())
            elif i == len(parts):
                files.add(path.with_suffix(".py").relative_to(ROOT).as_posix())
    return files


def test_the_bentofile_includes_exactly_what_the_service_imports():
    config = yaml.safe_load((ROOT / "serving" / "bentofile.yaml").read_text())
    included = {item for item in config["include"] if item.endswith(".py")}
    assert included == service_files(), "regenerate serving/bentofile.yaml's include list from the import graph"
    for left_out in ("ml/cli.py", "ml/download.py", "ml/data/prepare.py", "serving/cli.py", "serving/package.py"):
        assert left_out not in included
    assert not any(item.startswith(("serving/dashboard", "ml/training", "spark_apps", "plugins")) for item in included)
