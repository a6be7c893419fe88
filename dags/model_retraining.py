"""Wiring only: each task calls one function of `pipelines.retrain`."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task
from assets import TRAINING_EXAMPLES

DOC = """
### Model retraining

Retrains the XGBoost response model that scores customers x arms, weekly (Monday 04:00 UTC)
**and** whenever the daily DAG refreshes `analytics.training_examples`.

**build_training_set** (skips the run, cleanly, when there are fewer than `min_examples`
matured examples) -> **train** (time split: older days train, the newest validate;
early stopping) -> **evaluate** (AUC, log loss, Brier, calibration, lift/gain, feature
importance, off-policy value of the model's greedy policy) -> **register** (MLflow run,
new version with alias `challenger`) -> **gate** (the champion is evaluated on the same
validation days; the challenger must beat it by the configured margins) -> **promote**
(alias `champion`, unless `auto_promote` is off).

Tasks exchange a work folder under `$CAMPAIGNOPT_HOME/retrain/` (XCom holds its path and
small summaries). Review and promote by hand with `campaignopt model list|promote|rollback`;
browse runs with the command `campaignopt model ui` prints.
"""

WEEKLY = CronTriggerTimetable("0 4 * * 1", timezone="UTC")


@dag(
    dag_id="model_retraining",
    schedule=AssetOrTimeSchedule(timetable=WEEKLY, assets=TRAINING_EXAMPLES),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["campaignopt", "ml", "retraining"],
    doc_md=DOC,
    default_args={
        # `campaignopt retrain` runs by hand with retries off, so a failure reports at once.
        "retries": int(os.environ.get("CAMPAIGNOPT_TASK_RETRIES", "1")),
        "retry_delay": timedelta(minutes=10),
        "owner": "ml-engineering",
    },
    params={
        "min_examples": Param(1000, type="integer", minimum=2, description="Skip below this many examples."),
        "min_days": Param(3, type="integer", minimum=2, description="Skip below this many decision dates."),
        "validation_days": Param(7, type="integer", minimum=1, description="Newest days held out."),
        "auto_promote": Param(True, type="boolean", description="Promote when the gate passes."),
        "min_log_loss_gain": Param(0.0, type="number", description="Required log-loss gain over champion."),
        "min_value_gain": Param(0.0, type="number", description="Required off-policy value gain."),
    },
)
def model_retraining():
    @task
    def build_training_set(params: dict | None = None, dag_run=None, run_id: str | None = None) -> str:
        """Snapshot the training set; skip the whole run when there is too little data."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines import retrain
        from pipelines.settings import get_settings

        # Asset-triggered runs have no logical date: train on what exists up to the trigger.
        as_of = (dag_run.logical_date or dag_run.run_after).date()
        safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id or "manual")
        work_dir = get_settings().home / "retrain" / f"{as_of.isoformat()}_{safe_run}"
        summary = retrain.build_training_set(work_dir, config=dict(params or {}), as_of=as_of)
        if summary["status"] == retrain.SKIPPED:
            raise AirflowSkipException(f"not enough data to retrain: {summary['reason']}")
        return str(work_dir)

    @task
    def train(work_dir: str) -> dict:
        from pipelines import retrain

        return retrain.train_step(work_dir)

    @task
    def evaluate(work_dir: str) -> dict:
        from pipelines import retrain

        return retrain.evaluate_step(work_dir)

    @task
    def register(work_dir: str, run_id: str | None = None) -> dict:
        from pipelines import retrain

        return retrain.register_step(work_dir, run_tags={"airflow_run_id": run_id or ""})

    @task
    def gate(work_dir: str) -> dict:
        from pipelines import retrain

        return retrain.gate_step(work_dir)

    @task
    def promote(work_dir: str) -> dict:
        from pipelines import retrain

        return retrain.promote_step(work_dir)

    work_dir = build_training_set()
    trained = train(work_dir)
    evaluated = evaluate(work_dir)
    registered = register(work_dir)
    gated = gate(work_dir)
    promoted = promote(work_dir)
    trained >> evaluated >> registered >> gated >> promoted


model_retraining()
