"""The installed environment matches the pins, and packages that share files agree with each other."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PINS = dict(
    re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line).groups()
    for line in (ROOT / "requirements.in").read_text().splitlines()
    if re.match(r"^[A-Za-z0-9_.-]+==", line)
)


@pytest.mark.parametrize("name", sorted(PINS))
def test_installed_version_matches_pin(name):
    assert version(name).split("+")[0] == PINS[name]


def test_pyspark_python_files_match_its_jars():
    # pyspark-client (required by the Spark provider) writes into the same pyspark/ folder; `make install`
    # puts pyspark's own files back. A mismatch breaks every Python UDF with a Py4J constructor error.
    import pyspark

    assert pyspark.__version__ == PINS["pyspark"]
    jars = Path(pyspark.__file__).parent / "jars"
    assert list(jars.glob(f"spark-core_*-{pyspark.__version__}.jar"))


def test_pandas_below_3_for_pyspark():
    import pandas

    assert int(pandas.__version__.split(".")[0]) < 3
