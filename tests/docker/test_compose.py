"""``docker/`` validated without a container engine: the compose file against the Compose Specification's JSON
schema (before and after interpolation), every path, image, command and variable it references, and the env
template against every variable the platform's code reads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
TEMPLATE = DOCKER / "env.template"
DOCKERFILE = DOCKER / "Dockerfile"
SCHEMA = Path(__file__).with_name("compose-spec.json")
#: images pulled from a registry rather than built here, and the Bento's image (from `bentoml containerize`)
EXTERNAL_IMAGES = {"postgres": "postgres:15", "redis": "redis:7.0"}
BENTO_SERVICE = "sentiment"
#: variables of the process environment that are not the platform's to document
SYSTEM_VARIABLES = {"PATH", "HOME", "HOSTNAME"}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def template() -> dict[str, tuple[str, bool]]:
    """Variables of the env template: name -> (value, set) where ``set`` is False for a commented example."""
    found = {}
    for line in TEMPLATE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(2)] = (match.group(3).split("   ")[0].strip(), match.group(1) is None)
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""
    def one(match: re.Match) -> str:
        name, op, arg = match.groups()
        value = env.get(name)
        if op in (":-", "-"):
            return value if (value if op == ":-" else value is not None) else arg
        if op in (":?", "?"):
            if not (value if op == ":?" else value is not None):
                raise ValueError(f"{name}: {arg}")
            return value
        return value or ""

    return VARIABLE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def filled_env() -> dict[str, str]:
    """The template's values, with every required (empty) secret filled in as a user would."""
    return {name: value or f"secret-{name.lower()}" for name, (value, is_set) in template().items() if is_set}


def validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft7Validator(schema)


def test_the_compose_file_follows_the_compose_specification():
    errors = sorted(validator().iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_interpolated_with_the_template_it_still_does():
    doc = yaml.safe_load(interpolate(COMPOSE.read_text(), filled_env()))
    errors = list(validator().iter_errors(doc))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    assert doc["services"]["spark-worker"]["deploy"]["replicas"] == 2
    assert doc["services"]["airflow-worker"]["deploy"]["replicas"] == 2


def test_the_required_secrets_fail_loudly_when_missing():
    env = filled_env()
    env.pop("POSTGRES_PASSWORD")
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD: set it in docker/.env"):
        interpolate(COMPOSE.read_text(), env)


def test_every_variable_is_defined_in_the_template_or_defaulted():
    listed = template()
    problems = []
    for name, op, _ in VARIABLE.findall(COMPOSE.read_text().replace("$$", "")):  # $$ escapes a $
        if op in (":?", "?") and not listed.get(name, ("", False))[1]:
            problems.append(f"{name} is required but not set (uncommented) in env.template")
        elif not op and name not in listed:
            problems.append(f"{name} has no default and is not in env.template")
    assert problems == []


def _referenced_variables() -> set[str]:
    """Every environment variable the platform's code reads: the settings' variables, the settings file's
    variable, and literal reads (``os.environ[...]``, ``.get``, ``getenv``, ``setdefault``) in the layers."""
    from ml.settings import CONFIG_VARIABLE, SPECS

    names = {spec.env for spec in SPECS} | {CONFIG_VARIABLE}
    read = re.compile(r"(?:environ(?:\.get|\.setdefault)?|getenv)\s*[\[(]\s*[\"']([A-Z][A-Z0-9_]+)[\"']")
    for folder in ("ml", "serving", "spark_apps", "plugins", "dags", "ops"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(read.findall(path.read_text()))
    return names - SYSTEM_VARIABLES


def test_the_template_lists_every_variable_the_code_reads():
    missing = sorted(_referenced_variables() - set(template()))
    assert missing == [], f"add these to docker/env.template: {missing}"


def test_the_template_holds_no_secret_values():
    for name, (value, is_set) in template().items():
        if is_set:
            assert value == "", f"{name} has a value in the committed template"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DOCKER / ".env")], cwd=ROOT).returncode
    assert ignored == 0, "docker/.env must be git-ignored"


def _targets() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.M | re.I))


def test_every_service_has_an_image_that_is_built_here_or_pinned():
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name
            assert (ROOT / build["dockerfile"]).is_file(), name
            assert build["target"] in _targets(), (name, build["target"])
            assert "image" in service, f"{name}: name the built image so that replicas share it"
        elif name == BENTO_SERVICE:
            assert "bentoml containerize" in (DOCKER / "README.md").read_text()
            assert "tweet-sentiment" in service["image"]
        else:
            assert service["image"] == EXTERNAL_IMAGES[name], name


def test_every_path_exists():
    services = compose()["services"]
    for name, service in services.items():
        for env_file in service.get("env_file", []):
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert path == ".env" and TEMPLATE.is_file(), (name, path)  # docker/.env is made from the template
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose()["volumes"], f"{name}: {source} is not a named volume"
    # what the Dockerfile copies exists and is not excluded by its .dockerignore
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", DOCKERFILE.read_text(), re.M):
        for item in source.split():
            assert (ROOT / item).exists(), item
            assert f"!{item}" in ignore or f"!{item}/**" in ignore, f"{item} is excluded by the .dockerignore"
    spark_class = re.search(r"site-packages/pyspark/bin/spark-class", DOCKERFILE.read_text())
    assert spark_class
    import pyspark

    assert (Path(pyspark.__file__).parent / "bin" / "spark-class").is_file()
    assert f"python{sys.version_info.major}.{sys.version_info.minor}" in DOCKERFILE.read_text()


def test_the_spark_commands_name_classes_in_the_wheel():
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    (core,) = jars.glob("spark-core_*.jar")
    classes = set(zipfile.ZipFile(core).namelist())
    services = compose()["services"]
    for name in ("spark-master", "spark-worker"):
        main = services[name]["command"][0]
        assert main.replace(".", "/") + ".class" in classes, main
    assert services["spark-worker"]["command"][1] == "spark://spark-master:7077"
    airflow = services["airflow-scheduler"]["environment"]
    conn = json.loads(airflow["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert (conn["host"], conn["port"], conn["extra"]["deploy-mode"]) == ("spark://spark-master", 7077, "client")


def test_the_airflow_commands_exist_with_the_celery_provider(tmp_path):
    services = compose()["services"]
    commands = [services[name]["command"] for name in services if name.startswith("airflow-") and name != "airflow-init"]
    commands += [["db", "migrate"]]
    commands += [service["healthcheck"]["test"][2:] for name, service in services.items()
                 if name.startswith("airflow-") and "healthcheck" in service
                 and service["healthcheck"]["test"][1] == "airflow"]
    assert "airflow db migrate" in services["airflow-init"]["command"][0]
    script = ("import json, sys\nfrom airflow.cli.cli_parser import get_parser\nparser = get_parser()\n"
              "for cmd in json.loads(sys.argv[1]):\n    parser.parse_args(cmd)\nprint('ok')\n")
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert len(commands) >= 9


def test_the_dashboard_and_healthchecks_are_runnable_code():
    services = compose()["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "python"]:
            compile(test[3], f"{name} healthcheck", "exec")
    entry = re.search(r'ENTRYPOINT \["python", "-m", "serving.dashboard"\]', DOCKERFILE.read_text())
    assert entry and (ROOT / "serving" / "dashboard" / "__main__.py").is_file()
    done = subprocess.run([sys.executable, "-m", "serving.dashboard", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "--host" in done.stdout and "--port" in done.stdout
