"""The daily DAG on a real Airflow deployment: API server, scheduler, DAG processor, triggerer and two
Celery workers (Redis broker, PostgreSQL metadata and result backend), driven through the REST API.

Two worlds of the same data — the campaigns of test_daily_dag.py and one day of 500 generated
customers — each in a database and home of its own: one is run in-process by the one-command path
(`campaignopt daily --date D`, i.e. `airflow dags test`) while the deployment starts; the other is
triggered on the deployment. The published lists must be the same, byte for byte, and the tasks
must have run on both workers. Then the retraining DAG runs on the same deployment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.deploy.airflow_cluster import AirflowCluster, ClusterConfig, scratch_database
from pipelines.deploy.airflow_rest import AirflowRest, RunNotFinished, describe
from pipelines.settings import get_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAG = "daily_campaign_optimization"
DAY = date(2026, 11, 2)
CAMPAIGNS = {"card_cashback": "card-cashback", "cross_sell": "cross-sell"}  # file -> campaign name
DECISION_COLUMNS = "decision_id, customer_id, arm_id, propensity, treatment_group, explored, seed"
RUN_TIMEOUT = 300  # seconds for the deployed run (about 60-90 s here)


def make_world(url: str, home: Path) -> dict[str, str]:
    """Migrate ``url``, apply the campaigns and land D's customer files in ``home``'s inbox, as
    test_daily_dag.py does; returns the campaignopt settings a process of this world needs."""
    from pipelines import migrate
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files

    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    for name in CAMPAIGNS:
        apply_campaign(engine, load_campaign(REPO / f"campaigns/{name}.yaml"))
    engine.dispose()
    write_customer_files(home / "inbox", DAY, 500, seed=11)
    # The world's own database as its (empty) model registry: no champion, in both worlds.
    return {
        "DATABASE_URL": url,
        "CAMPAIGNOPT_HOME": str(home),
        "MLFLOW_TRACKING_URI": url,
        "CAMPAIGNOPT_ENV": "deploytest",  # the registered model: campaignopt-response-deploytest
    }


def create_registry_tables(url: str) -> None:
    """MLflow creates its tables on first use; two decide tasks at once on two workers would both
    try (UniqueViolation on alembic_version), so the deployed world's registry exists beforehand,
    as a deployment's does."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=url, registry_uri=url).search_registered_models()


@pytest.fixture(scope="module")
def in_process_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    """`campaignopt daily --date D` on its own world, started at once, running beside the deployment."""
    with scratch_database(prefix="campaignopt_inprocess") as url:
        world = make_world(url, tmp_path_factory.mktemp("in_process_world"))
        cli = str(Path(sys.executable).with_name("campaignopt"))
        run = subprocess.Popen(
            [cli, "daily", "--date", DAY.isoformat()],
            env={**os.environ, **world},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield run, world
        finally:
            if run.poll() is None:
                run.kill()
            run.communicate()


@pytest.fixture(scope="module")
def deployment(
    in_process_run, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowCluster, AirflowRest, dict[str, str]]]:
    """The deployment on a world of its own; every process stopped and both databases dropped after."""
    with (
        scratch_database(prefix="airflow_deploy") as metadata_url,
        scratch_database(prefix="campaignopt_deployed") as url,
    ):
        home = tmp_path_factory.mktemp("deployment")
        # Each list decided as 4 bucket tasks over both workers; the in-process run decides it whole.
        world = make_world(url, home / "campaignopt") | {"DECIDE_BUCKETS": "4"}
        create_registry_tables(url)
        (home / "campaignopt" / "inbox" / DAY.isoformat() / "_READY").touch()  # the producer's marker
        config = ClusterConfig(
            home=home / "airflow",
            metadata_url=metadata_url,
            use_job_schedule=False,  # no scheduled run of "yesterday" beside the triggered one
            # A failure fails the run at once, not after two retries 5 minutes apart.
            extra_env={**world, "CAMPAIGNOPT_TASK_RETRIES": "0"},
        )
        # The components take campaignopt's settings from this process's (`airflow_env`): this world's.
        with pytest.MonkeyPatch.context() as patch:
            for name, value in world.items():
                patch.setenv(name, value)
            get_settings.cache_clear()
            with AirflowCluster(config) as cluster:
                yield cluster, AirflowRest(config.api_url), world
        get_settings.cache_clear()


def task_log_tails(cluster: AirflowCluster, run_id: str, task_instances: list[dict], lines: int = 25) -> str:
    """The end of each unsuccessful task's log file (the workers write them under the shared home)."""
    folder = cluster.config.home / "logs" / f"dag_id={DAG}" / f"run_id={run_id}"
    bad = {ti["task_id"] for ti in task_instances if ti["state"] != "success"}
    tails = []
    for path in sorted(folder.glob("task_id=*/**/*.log")):
        task_id = path.relative_to(folder).parts[0].removeprefix("task_id=")
        if task_id in bad:
            text = path.read_text(errors="replace").splitlines()
            tails.append(f"--- {path.relative_to(folder)}:\n" + "\n".join(text[-lines:]))
    return "\n".join(tails)


def published(world: dict[str, str]) -> tuple[list[tuple], dict[str, pd.DataFrame], dict[str, bytes]]:
    """The world's send lists (campaign, status, size), its decisions per campaign and its CSV exports."""
    engine = sa.create_engine(world["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            lists = conn.execute(
                sa.text(
                    "select c.name, l.status, l.n_rows from ops.send_lists l join ops.campaigns c "
                    "using (campaign_id) where l.list_date = :d order by c.name"
                ),
                {"d": DAY},
            ).all()
            decisions = {
                name: pd.read_sql(
                    sa.text(
                        f"select {DECISION_COLUMNS} from ops.decisions d join ops.campaigns c "
                        "using (campaign_id) where c.name = :n and d.decision_date = :d order by customer_id"
                    ),
                    conn,
                    params={"n": name, "d": DAY},
                )
                for name in CAMPAIGNS.values()
            }
    finally:
        engine.dispose()
    exports = Path(world["CAMPAIGNOPT_HOME"]) / "exports"
    files = {name: (exports / name / f"{DAY.isoformat()}.csv").read_bytes() for name in CAMPAIGNS.values()}
    return [tuple(row) for row in lists], decisions, files


def test_the_daily_dag_on_celery_workers_publishes_the_lists_of_the_in_process_run(
    deployment, in_process_run
) -> None:
    cluster, api, deployed_world = deployment
    api.wait_for_dag(DAG)
    assert api.unpause(DAG)["is_paused"] is False
    run_id = api.trigger(DAG, DAY)
    try:
        run = api.wait_for_run(DAG, run_id, timeout=RUN_TIMEOUT)
    except RunNotFinished as late:
        tis = api.task_instances(DAG, run_id)
        pytest.fail(f"{late}\n{task_log_tails(cluster, run_id, tis)}\n{cluster.log_tails()}")
    tis = api.task_instances(DAG, run_id)
    assert run["state"] == "success", (
        f"{describe(tis)}\n{task_log_tails(cluster, run_id, tis)}\n{cluster.log_tails()}"
    )
    assert run["logical_date"].startswith(DAY.isoformat())

    # Every task succeeded, once per campaign where mapped, and the work was spread over both workers.
    names = sorted((ti["task_id"], ti["map_index"]) for ti in tis if ti["state"] == "success")
    assert len(names) == len(tis), describe(tis)
    assert ("publish", 1) in names and ("monitor", -1) in names, describe(tis)
    assert [i for t, i in names if t == "decide"] == list(range(8)), describe(tis)  # 2 campaigns x 4
    assert {ti["hostname"] for ti in tis} == {"w1", "w2"}, describe(tis)

    # The same lists as the in-process run on the same data: the table, every decision, the exports.
    process, in_process_world = in_process_run
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 0, err[-3000:]
    assert out.startswith(f"{DAG} {DAY}: success in ")
    lists, decisions, files = published(deployed_world)
    expected_lists, expected_decisions, expected_files = published(in_process_world)
    assert lists == expected_lists
    assert [(name, status) for name, status, _ in lists] == [
        (n, "published") for n in sorted(CAMPAIGNS.values())
    ]
    for name in CAMPAIGNS.values():
        assert len(decisions[name]) > 0
        pd.testing.assert_frame_equal(decisions[name], expected_decisions[name])
        assert files[name] == expected_files[name], name


def test_the_retraining_dag_trains_gates_and_promotes_on_the_workers(deployment) -> None:
    """Its tasks hand over through one MLflow run (artifacts in the shared home), whichever worker
    takes each; the training set is test_model_retraining.py's synthetic one, as that test's."""
    import datetime as dt

    from mlflow import MlflowClient

    from ml.synthetic import make_training_examples

    cluster, api, world = deployment
    day = dt.date(2026, 11, 16)
    examples = make_training_examples(6_000, seed=7)
    shift = (day - dt.timedelta(days=1)) - max(examples["decision_date"])  # the newest day: the day before
    examples["decision_date"] = [d + shift for d in examples["decision_date"]]
    engine = sa.create_engine(world["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("create schema if not exists analytics"))
    examples.to_sql("training_examples", engine, schema="analytics", if_exists="replace", index=False)
    engine.dispose()

    api.wait_for_dag("model_retraining")
    api.unpause("model_retraining")
    run_id = api.trigger("model_retraining", day)
    run = api.wait_for_run("model_retraining", run_id, timeout=RUN_TIMEOUT)
    tis = api.task_instances("model_retraining", run_id)
    assert run["state"] == "success", f"{describe(tis)}\n{cluster.log_tails()}"
    assert sorted(ti["task_id"] for ti in tis if ti["state"] == "success") == sorted(
        ["build_training_set", "train", "evaluate", "register", "gate", "promote"]
    ), describe(tis)
    assert {ti["hostname"] for ti in tis} <= {"w1", "w2"}

    client = MlflowClient(
        tracking_uri=world["MLFLOW_TRACKING_URI"], registry_uri=world["MLFLOW_TRACKING_URI"]
    )
    champion = client.get_model_version_by_alias(
        f"campaignopt-response-{world['CAMPAIGNOPT_ENV']}", "champion"
    )
    assert champion.tags["gate_passed"] == "true"
    assert client.get_run(champion.run_id).data.tags["airflow_run_id"] == run_id
