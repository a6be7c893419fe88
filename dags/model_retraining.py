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
validation rows; the challenger's AUC interval must clear 0.5 + `min_auc_margin`, and with a
champion it must not be significantly worse in log loss, AUC or off-policy value — the fresher
model replaces a champion it is level with; `refresh_when_not_worse: false` asks a significant
log-loss gain) -> **promote** (alias `champion`, unless `auto_promote` is off).

Tasks hand over through one MLflow run: XCom carries its run id; each task downloads its
inputs from the run's artifacts and logs its outputs to it, so tasks may run on different
workers (the artifact store must be shared: an MLflow server with `--serve-artifacts` or an
object store). Review and promote by hand with `campaignopt model list|promote|rollback`;
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
        "min_days": Param(2, type="integer", minimum=2, description="Skip below this many decision dates."),
        "validation_days": Param(1, type="integer", minimum=1, description="Newest days held out."),
        "auto_promote": Param(True, type="boolean", description="Promote when the gate passes."),
        "min_auc_margin": Param(0.02, type="number", minimum=0, maximum=0.49,
                                description="Floor: the AUC interval's lower bound must exceed 0.5 + this."),
        "min_log_loss_gain": Param(0.0, type="number",
                                   description="The log-loss gain's lower bound must exceed this."),
        "max_value_drop": Param(0.0, type="number", minimum=0,
                                description="Tolerated significant drop of the off-policy value."),
        "refresh_when_not_worse": Param(True, type="boolean",
                                        description="Promote a fresher challenger not significantly worse."),
    },
)
def model_retraining():
    @task
    def build_training_set(params: dict | None = None, dag_run=None, run_id: str | None = None) -> str:
        """Snapshot the training set into a new MLflow run; skip the whole run when there is too little."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines import retrain

        # Asset-triggered and manual runs may have no logical date: train on what exists up to the trigger.
        as_of = (dag_run.logical_date or dag_run.run_after).date()
        summary = retrain.build_training_set(
            config=dict(params or {}), as_of=as_of, run_tags={"airflow_run_id": run_id or ""}
        )
        if summary["status"] == retrain.SKIPPED:
            raise AirflowSkipException(f"not enough data to retrain: {summary['reason']}")
        return str(summary["run_id"])

    @task
    def train(mlflow_run_id: str) -> dict:
        from pipelines import retrain

        return retrain.train_step(mlflow_run_id)

    @task
    def evaluate(mlflow_run_id: str) -> dict:
        from pipelines import retrain

        return retrain.evaluate_step(mlflow_run_id)

    @task
    def register(mlflow_run_id: str) -> dict:
        from pipelines import retrain

        return retrain.register_step(mlflow_run_id)

    @task
    def gate(mlflow_run_id: str) -> dict:
        from pipelines import retrain

        return retrain.gate_step(mlflow_run_id)

    @task
    def promote(mlflow_run_id: str) -> dict:
        from pipelines import retrain

        return retrain.promote_step(mlflow_run_id)

    mlflow_run_id = build_training_set()
    trained = train(mlflow_run_id)
    evaluated = evaluate(mlflow_run_id)
    registered = register(mlflow_run_id)
    gated = gate(mlflow_run_id)
    promoted = promote(mlflow_run_id)
    trained >> evaluated >> registered >> gated >> promoted


model_retraining()
