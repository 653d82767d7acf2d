"""The training pipeline's steps (``sentiment_platform.pipeline``) without Airflow: run ids, validation, idempotency, failures."""

from __future__ import annotations

import json

import pytest

from ml.errors import ConfigError, DataError, ModelError
from ml.settings import get_settings
from sentiment_platform.pipeline import (
    DEFAULT_FAMILIES,
    check_data_version,
    choose_champion,
    evaluate_run,
    fetch_data,
    finish_run,
    missing_families,
    package_champion,
    plan_groups,
    plan_run,
    prepare_data,
    read_leaderboard,
    read_run_record,
    record_failure,
    run_id_from,
    settings_for,
    train_family,
)


def test_run_id_from_dag_run_ids():
    assert run_id_from("manual__2026-01-02T03:04:05.123+00:00") == "manual__2026-01-02T03_04_05.123_00_00"
    assert run_id_from("scheduled__2026-01-02T00:00:00+00:00").startswith("scheduled__2026-01-02T00_00_00")
    long_a, long_b = run_id_from("x" * 300 + "a"), run_id_from("x" * 300 + "b")
    assert len(long_a) <= 128 and long_a != long_b
    assert run_id_from("::++").startswith("run-") and run_id_from("::++") != run_id_from("::--")
    for dag_run_id in ("manual__2026-01-02T03:04:05+00:00", "::++", "ü" * 200, "-lead"):
        assert get_settings(run_id=run_id_from(dag_run_id)).training.run_id  # a valid run folder name
    with pytest.raises(ConfigError):
        run_id_from("")


def test_plan_defaults_and_record(home):
    plan = plan_run({}, "manual__2026-01-02T03:04:05+00:00", dag_id="d")
    assert plan["families"] == list(DEFAULT_FAMILIES)
    assert plan["run_id"] == "manual__2026-01-02T03_04_05_00_00"
    assert plan["settings"]["home"] == str(home.resolve())
    assert plan["train"] == {} and plan["eval_max_samples"] is None and plan["build_bento"] is False
    record = read_run_record(settings_for(plan))
    assert record["dag_run_id"] == "manual__2026-01-02T03:04:05+00:00" and record["status"] == "running"
    assert settings_for(plan).reports_dir == home.resolve() / "reports" / plan["run_id"]


def test_plan_takes_params(home):
    plan = plan_run({"families": ["multinomialnb", "logreg", "logreg"], "max_samples": 100, "epochs": 2,
                     "model_name": "/m", "neutral_low": 0.3, "neutral_high": 0.7, "data_url": "file:///x.zip",
                     "eval_max_samples": 50, "build_bento": True}, "r1")
    assert plan["families"] == ["multinomialnb", "logreg"]
    assert plan["train"] == {"max_samples": 100, "epochs": 2, "model_name": "/m"}
    settings = settings_for(plan)
    assert settings.neutral_band == (0.3, 0.7) and settings.data.url == "file:///x.zip"
    assert plan["eval_max_samples"] == 50 and plan["build_bento"] is True


@pytest.mark.parametrize("params, field", [
    ({"families": ["logreg", "nope"]}, "nope"),
    ({"neutral_low": 0.8, "neutral_high": 0.2}, "neutral_low"),
    ({"max_samples": "many"}, "max_samples"),
    ({"max_samples": 0}, "max_samples"),
    ({"epochs": 1.5}, "epochs"),
    ({"families": ["gru"], "teacher": "/no/such/model"}, "teacher '/no/such/model': not a saved model"),
    ({"families": ["lstm"], "embeddings": "/no/such/glove.txt"}, "embeddings '/no/such/glove.txt': not 'minilm'"),
    ({"teacher": "logreg"}, "teacher: no family of this run learns from a teacher"),   # the classical three
    ({"embeddings": "minilm"}, "embeddings: no family of this run uses word vectors"),
])
def test_plan_rejects_bad_params_naming_them(home, params, field):
    with pytest.raises(ConfigError, match=field):
        plan_run(params, "r1")


def groups(plan: dict) -> tuple[list[str], list[str], list[str]]:
    return plan["independent"], plan["teachers"], plan["students"]


def groups_of(plan: dict) -> dict[str, list[str]]:
    return dict(zip(("independent", "teachers", "students"), groups(plan), strict=True))


def plan_teacher_folder(home):
    """A folder that passes for a saved model (a teacher named by path must exist when the run is planned)."""
    folder = home / "saved-teacher"
    folder.mkdir(exist_ok=True)
    (folder / "predictor.json").write_text(json.dumps({"family": "logreg", "labels": ["negative", "positive"]}))
    return folder


def test_plan_groups_for_a_teacher_of_the_run(home):
    """A teacher that is a family of the run trains beside the others; the GRU/LSTM of the run distil from it
    once it is done."""
    plan = plan_run({"families": ["gru", "minilm", "logreg", "lstm"], "teacher": "minilm"}, "r3")
    assert groups(plan) == (["logreg"], ["minilm"], ["gru", "lstm"]) and plan["train"]["teacher"] == "minilm"
    assert groups(plan_run({"families": ["logreg", "gru"]}, "r4")) == (["logreg", "gru"], [], [])
    assert groups(read_run_record(settings_for(plan))) == groups(plan)  # run.json says who waited for whom
    earlier = plan_run({"families": ["logreg", "gru"], "teacher": str(plan_teacher_folder(home))}, "r8")
    assert plan_groups(earlier) == {"independent": ["logreg", "gru"], "teachers": [], "students": []}
    with pytest.raises(ConfigError, match="no family of this run learns from a teacher"):
        plan_run({"families": ["minilm", "logreg"], "teacher": "minilm"}, "r5")
    with pytest.raises(ConfigError, match="gru is trained by this run, but no gru or lstm of the run learns"):
        plan_run({"families": ["gru", "logreg"], "teacher": "gru"}, "r7")
    with pytest.raises(ConfigError, match="family of this run"):
        plan_run({"families": ["gru"], "teacher": "minilm"}, "r6")


def test_missing_families_and_failure_record(home):
    plan = plan_run({"families": ["logreg", "multinomialnb"]}, "r2")
    assert missing_families(plan, [{"model": "logreg", "family": "logreg"}]) == ["multinomialnb"]
    record_failure(plan, task_id="train", map_index=1, family="multinomialnb", error="boom")
    record_failure(plan, task_id="train", map_index=1, family="multinomialnb", error="boom again")
    failures = read_run_record(settings_for(plan))["failures"]
    assert [f["error"] for f in failures] == ["boom", "boom again"] and failures[0]["family"] == "multinomialnb"


def test_check_data_version(prepared):
    manifest = json.loads((prepared.processed_dir / "manifest.json").read_text())
    check_data_version(prepared, manifest["data_version"])
    with pytest.raises(DataError, match="changed during this run"):
        check_data_version(prepared, "0123456789ab")


@pytest.mark.slow
def test_steps_end_to_end_idempotent_and_a_failed_family_is_reported(home, s140_zip):
    plan = plan_run({"families": ["logreg", "multinomialnb"], "data_url": s140_zip.as_uri()}, "manual__e2e")
    fetched = fetch_data(plan)
    assert fetch_data(plan) == fetched  # already valid: nothing to do
    data = prepare_data(plan, fetched["archive"])
    assert prepare_data(plan, fetched["archive"])["data_version"] == data["data_version"]
    trained = train_family(plan, "logreg", data["data_version"])
    assert trained["run_id"] == "manual__e2e" and trained["data_version"] == data["data_version"]
    # multinomialnb "failed": the others are still evaluated, packaged, and the run reports it
    rows = evaluate_run(plan)
    assert [r["model"] for r in rows] == ["logreg"]
    board = read_leaderboard(plan)
    assert board["rows"] == rows
    champion = choose_champion(board["rows"])
    first = package_champion(plan, champion)
    again = package_champion(plan, champion)  # a re-run: same entry, no duplicate in the store
    assert again["tag"] == first["tag"] and first["run_id"] == "manual__e2e"
    versions = [p for p in (home / "bentoml" / "models" / "tweet-sentiment").iterdir() if p.name != "latest"]
    assert len(versions) == 1
    with pytest.raises(ModelError, match="multinomialnb"):
        finish_run(plan)
    record = read_run_record(settings_for(plan))
    assert record["status"] == "failed" and record["failed_families"] == ["multinomialnb"]
    assert record["model_tag"] == first["tag"] and record["champion"] == "logreg"

    train_family(plan, "multinomialnb", data["data_version"])  # the family is fixed and re-run
    evaluate_run(plan)
    assert finish_run(plan)["status"] == "success"


@pytest.mark.slow
def test_a_run_distils_gru_from_a_model_of_an_earlier_run(home, s140_zip):
    """``teacher`` names a saved model of an earlier run: GRU learns from it, LogisticRegression ignores it."""
    from ml.errors import ConfigError
    from ml.training import train

    earlier = plan_run({"families": ["logreg"], "data_url": s140_zip.as_uri()}, "manual__earlier")
    data = prepare_data(earlier, fetch_data(earlier)["archive"])
    teacher = train_family(earlier, "logreg", data["data_version"])["path"]

    plan = plan_run({"families": ["logreg", "gru"], "teacher": teacher, "epochs": 1, "max_samples": 200,
                     "data_url": s140_zip.as_uri()}, "manual__student")
    assert plan["train"]["teacher"] == teacher and groups(plan) == (["logreg", "gru"], [], [])  # nothing waits
    train_family(plan, "logreg", data["data_version"])                 # not a student: the teacher is dropped
    student = train_family(plan, "gru", data["data_version"])
    meta = json.loads((home / "models" / "manual__student" / "gru" / "predictor.json").read_text())
    assert student["family"] == "gru" and meta["params"]["teacher"] == teacher
    assert meta["fit"]["teacher"]["family"] == "logreg" and meta["fit"]["teacher"]["agreement"] > 0.8
    rows = {row["model"]: row for row in evaluate_run(plan)}
    assert rows["gru"]["teacher"] == "logreg:logreg" and rows["logreg"]["teacher"] is None
    board = (home / "reports" / "manual__student" / "leaderboard.md").read_text()
    assert "| gru (distilled from logreg:logreg) |" in board

    settings = settings_for(plan)
    with pytest.raises(ConfigError, match="applies to gru and lstm"):
        train("logreg", settings, teacher=teacher)
    with pytest.raises(ConfigError, match="needs a teacher"):
        train("gru", settings, teacher_weight=0.5)
    # A model of the same run is found by its name.
    facts = train("lstm", settings, teacher="logreg", epochs=1, max_samples=100)
    assert facts["fit"]["teacher"]["path"] == str(settings.models_dir.resolve() / "logreg")


@pytest.mark.slow
def test_a_student_of_the_run_waits_for_its_teacher(home, s140_zip):
    """``teacher`` names a family of the run: nothing to evaluate before any model; the GRU fails naming its
    teacher until the teacher's model is saved, then distils from the run's own model (and takes the run's word
    vectors, which LogisticRegression ignores)."""
    plan = plan_run({"families": ["gru", "logreg"], "teacher": "logreg", "epochs": 1, "max_samples": 200,
                     "embeddings": "minilm", "data_url": s140_zip.as_uri()}, "manual__stages")
    assert groups(plan) == ([], ["logreg"], ["gru"])
    data = prepare_data(plan, fetch_data(plan)["archive"])
    with pytest.raises(ModelError, match="saved no model"):
        evaluate_run(plan)
    with pytest.raises(ModelError, match="gru distils from this run's logreg, which saved no model"):
        train_family(plan, "gru", data["data_version"])
    train_family(plan, "logreg", data["data_version"])  # the teacher: trained without one
    teacher_meta = home / "models" / "manual__stages" / "logreg" / "predictor.json"
    good = teacher_meta.read_text()
    teacher_meta.write_text(json.dumps({**json.loads(good), "data_version": "0123456789ab"}))
    with pytest.raises(ModelError, match="trained on data version 0123456789ab, not this run's"):
        train_family(plan, "gru", data["data_version"])  # a stale teacher left by an earlier attempt
    teacher_meta.write_text(good)
    train_family(plan, "gru", data["data_version"])
    meta = json.loads((home / "models" / "manual__stages" / "gru" / "predictor.json").read_text())
    assert meta["fit"]["teacher"]["path"] == str((home / "models" / "manual__stages" / "logreg").resolve())
    assert meta["params"]["embeddings"] == "minilm" and meta["fit"]["embeddings"]["coverage"] > 0.9  # GRU only
    assert {row["model"] for row in evaluate_run(plan)} == {"gru", "logreg"}


def _record_many(plan, worker: int, n: int) -> None:
    for i in range(n):
        record_failure(plan, task_id="train", map_index=worker, family=f"f{worker}", error=f"boom {i}")


def test_parallel_failure_records_are_all_kept(home):
    """Mapped train tasks fail in parallel processes: every failure must reach run.json (a locked update)."""
    import multiprocessing

    plan = plan_run({"families": ["logreg"]}, "manual__parallel")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_record_many, args=(plan, w, 15)) for w in range(6)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    failures = read_run_record(settings_for(plan))["failures"]
    assert len(failures) == 6 * 15
    assert {f["family"] for f in failures} == {f"f{w}" for w in range(6)}


# ------------------------------------------------------------------------------------------------ three classes
def neutral_tsv(path, n: int = 240, seed: int = 7):
    from fixtures import make_neutral_tsv

    return make_neutral_tsv(path, n, seed)


def test_plan_with_a_neutral_source(home, tmp_path):
    source, extra = neutral_tsv(tmp_path / "semeval.tsv"), neutral_tsv(tmp_path / "held_out.tsv", 30, seed=8)
    plan = plan_run({"families": ["logreg", "minilm"], "neutral_url": str(source),
                     "neutral_families": ["logreg", "minilm"], "transfer": True, "class_weight": "balanced",
                     "class_priors": "none", "champion_rule": "accuracy", "extra_eval": [str(extra), f"named={extra}"]}, "r3c")
    assert plan["jobs"]["minilm-neutral"] == {"family": "minilm", "dataset": "neutral", "init_from": "minilm"}
    assert plan["jobs"]["logreg-neutral"] == {"family": "logreg", "dataset": "neutral", "init_from": None}
    assert groups_of(plan) == {"independent": ["logreg", "logreg-neutral"], "teachers": ["minilm"],
                               "students": ["minilm-neutral"]}
    settings = settings_for(plan)
    assert settings.training.class_weight == "balanced" and settings.training.champion_rule == "accuracy"
    assert settings.training.class_priors == "none"
    assert settings.data.neutral_url == str(source) and settings.data.dataset == "default"
    assert plan["extra_eval"] == [str(extra), f"named={extra}"]
    # Without transfer every job is independent; without neutral_families the classical three train on it.
    plain = plan_run({"families": ["logreg"], "neutral_url": str(source)}, "r3d")
    assert plan_groups(plain)["independent"] == ["logreg", "logreg-neutral", "linearsvc-neutral",
                                                 "multinomialnb-neutral"]
    assert plan_run({"families": ["logreg"]}, "r3e")["jobs"] == {"logreg": {"family": "logreg", "dataset": "default",
                                                                           "init_from": None}}


@pytest.mark.parametrize("params, message", [
    ({"neutral_families": ["logreg"]}, "neutral_families: no neutral source"),
    ({"neutral_url": "/no/such.tsv"}, "neutral_url: no such file"),
    ({"neutral_url": "SOURCE", "neutral_families": ["logreg"], "transfer": True}, "transfer: no three-class family"),
    ({"neutral_url": "SOURCE", "neutral_families": ["minilm"], "transfer": True}, "add them to families too"),
    ({"neutral_url": "SOURCE", "families": ["minilm", "gru"], "teacher": "minilm", "neutral_families": ["gru"],
      "transfer": True}, "gru on Sentiment140 already wait for the teacher"),
    ({"extra_eval": ["/no/such/test.tsv"]}, "extra_eval: no such file"),
    ({"class_weight": "inverse"}, "SENTIMENT_CLASS_WEIGHT"),
    ({"class_priors": "always"}, "SENTIMENT_CLASS_PRIORS"),
    ({"champion_rule": "newest"}, "SENTIMENT_CHAMPION_RULE"),
])
def test_plan_rejects_bad_three_class_params(home, tmp_path, params, message):
    source = str(neutral_tsv(tmp_path / "s.tsv"))
    params = {k: (source if v == "SOURCE" else v) for k, v in params.items()}
    with pytest.raises(ConfigError, match=message):
        plan_run(params, "r1")


@pytest.mark.slow
def test_steps_train_sentiment140_and_three_class_jobs_and_ship_a_three_class_champion(home, s140_zip, tmp_path):
    """One run: logreg on Sentiment140, logreg and a GRU that starts from the run's Sentiment140 GRU on the neutral
    data, scored on an external set too; the default rule ships the three-class model with the best macro recall,
    packaged with its three labels."""
    source, extra = neutral_tsv(tmp_path / "semeval.tsv"), neutral_tsv(tmp_path / "held_out.tsv", 30, seed=8)
    plan = plan_run({"families": ["logreg", "gru"], "neutral_url": str(source), "neutral_families": ["logreg", "gru"],
                     "transfer": True, "epochs": 1, "max_samples": 200, "data_url": s140_zip.as_uri(),
                     "extra_eval": [str(extra)]}, "manual__three")
    fetched = fetch_data(plan)
    assert fetched["neutral"] == str(source)
    data = prepare_data(plan, fetched["archive"], fetched["neutral"])
    assert set(data["data_versions"]) == {"default", "neutral"}
    with pytest.raises(ModelError, match="gru-neutral starts from this run's gru, which saved no model"):
        train_family(plan, "gru-neutral", data["data_versions"])
    for job in ("logreg", "gru", "logreg-neutral", "gru-neutral"):
        result = train_family(plan, job, data["data_versions"])
        assert result["name"] == job and result["dataset"] == ("neutral" if "-" in job else "default")
    meta = json.loads((home / "models" / "manual__three" / "gru-neutral" / "predictor.json").read_text())
    assert meta["dataset"] == "neutral" and meta["fit"]["init_from"]["new_head"] is True
    assert meta["fit"]["class_weights"]["negative"] > 1 > meta["fit"]["class_weights"]["positive"]  # auto: imbalanced
    rows = {row["model"]: row for row in evaluate_run(plan)}
    assert rows["logreg"]["dataset"] == "default" and rows["logreg-neutral"]["dataset"] == "neutral"
    assert rows["logreg-neutral"]["class_weight"] == "balanced" and rows["logreg"]["class_weight"] is None
    assert rows["gru-neutral"]["init_from"].startswith("gru:manual__three/gru")
    assert set(rows["logreg"]["extra"]) == {"held_out"}
    champion = choose_champion(list(rows.values()), plan)
    best = max((r for r in rows.values() if "neutral" in r["labels"]), key=lambda r: (r["macro_recall"], r["accuracy"]))
    assert champion["model"] == best["model"]
    packaged = package_champion(plan, champion)
    assert packaged["labels"] == ["negative", "neutral", "positive"]
    assert finish_run(plan)["status"] == "success"
    assert missing_families(plan, [r for r in rows.values() if r["model"] != "gru-neutral"]) == ["gru-neutral"]
