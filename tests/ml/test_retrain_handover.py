"""The retraining steps hand over through the MLflow run only: each step may run on another machine.

Each step after the first runs with its own fresh home and temporary folder (as a Celery worker
on another machine would), and that "machine" is deleted after the step. Only the run id
passes from step to step; the shared parts are the MLflow database and its artifact store.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

from ml.registry import CHAMPION, client_for
from ml.tracking import HandoverMissing, start_run
from pipelines import retrain as steps
from pipelines.retrain import registry_target

pytestmark = pytest.mark.slow

FAST = {"n_estimators": 60, "early_stopping_rounds": 10}


def test_steps_run_on_separate_machines_with_only_the_run_id(settings_for, examples, arms, tmp_path,
                                                            monkeypatch):
    # The first "machine" owns the shared artifact store (the experiment's root) and keeps it.
    built = steps.build_training_set(settings=settings_for, examples=examples, arms=arms, config=FAST,
                                     run_tags={"airflow_run_id": "manual__test"})
    assert built["status"] == steps.READY
    run_id = built["run_id"]

    def on_another_machine(step, name):
        machine = tmp_path / f"worker-{name}"
        (machine / "tmp").mkdir(parents=True)
        monkeypatch.setattr(tempfile, "tempdir", str(machine / "tmp"))
        settings = settings_for.model_copy(update={"campaignopt_home": machine / "home"})
        try:
            result = step(run_id, settings=settings)
            assert list((machine / "tmp").iterdir()) == []  # the step cleaned up its work folder
            return result
        finally:
            monkeypatch.setattr(tempfile, "tempdir", None)
            shutil.rmtree(machine)  # the machine is gone; the next step must not need it

    trained = on_another_machine(steps.train_step, "train")
    assert trained["run_id"] == run_id and trained["valid_date_to"] == "2026-01-28"
    evaluated = on_another_machine(steps.evaluate_step, "evaluate")
    assert 0.55 < evaluated["auc"] < 1 and evaluated["ope_dr_value"] is not None
    registered = on_another_machine(steps.register_step, "register")
    gated = on_another_machine(steps.gate_step, "gate")
    assert gated["passed"] and gated["version"] == registered["version"]
    promoted = on_another_machine(steps.promote_step, "promote")
    assert promoted["promoted"]

    target = registry_target(settings_for)
    client = client_for(target.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["airflow_run_id"] == "manual__test"
    assert run.data.metrics["val_auc"] == pytest.approx(evaluated["auc"], abs=1e-6)
    assert run.data.params["dataset.rows"] == str(len(examples))
    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"handover", "evaluation", "charts", "gate"} <= logged
    champion = client.get_model_version_by_alias(target.model_name, CHAMPION)
    assert str(champion.version) == registered["version"] and champion.run_id == run_id


def test_a_step_without_its_inputs_names_the_missing_artifact(settings_for):
    run_id = start_run(registry_target(settings_for), run_name="no snapshot")
    with pytest.raises(HandoverMissing, match=f"run {run_id} has no artifact handover/config.json"):
        steps.train_step(run_id, settings=settings_for)
