"""The running service follows the registry: a newly promoted champion is served without a restart,
a champion that fails to load keeps the previous one serving (with an alert and a /readyz
reason); and a service started while its database does not exist yet decides once it does."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import sqlalchemy as sa

from tests.api.realtime_world import add_world, optimize

pytestmark = pytest.mark.slow

CUSTOMERS = [f"champ-{i}" for i in range(10)]


@pytest.fixture
def scratch_db(database_url: str):
    """Factory of database names on the session's server (created by the caller or not), dropped after."""
    admin = sa.create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def make(prefix: str) -> str:
        names.append(f"{prefix}_{uuid.uuid4().hex[:8]}")
        return database_url.rsplit("/", 1)[0] + "/" + names[-1]

    yield make, admin
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def _until(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.3)


def _model_version(server, token: str, campaign_id: int) -> str | None:
    r = optimize(server, token, campaign_id, CUSTOMERS[0])
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


def test_a_promoted_champion_is_served_without_restart_and_a_broken_one_keeps_the_previous(
    launch, keys, engine, test_home, scratch_db
) -> None:
    from ml.registry import client_for, promote
    from ml.synthetic import make_arms, make_training_examples
    from pipelines.retrain import registry_target, retrain
    from pipelines.settings import Settings

    make, admin = scratch_db
    mlflow_url = make("mlflow_reload")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{mlflow_url.rsplit("/", 1)[1]}"'))
    env = f"reload{uuid.uuid4().hex[:6]}"  # its own registered model name
    settings = Settings(mlflow_tracking_uri=mlflow_url, campaignopt_home=test_home, campaignopt_env=env)
    campaign_id = add_world(engine, CUSTOMERS, policy={"name": "confidence_hybrid"})
    server = launch(MLFLOW_TRACKING_URI=mlflow_url, CAMPAIGNOPT_ENV=env, REALTIME_MODEL_CHECK_SECONDS="1")
    token = keys["service"]
    assert _model_version(server, token, campaign_id) is None  # no champion yet: the bandit alone

    examples, arms = make_training_examples(4_000, seed=3), make_arms()
    config = {"n_estimators": 20, "early_stopping_rounds": 5, "validation_days": 7}  # a week: the gate floor
    assert retrain(settings=settings, examples=examples, arms=arms, config=config)["promoted"]
    _until(lambda: _model_version(server, token, campaign_id) == "1", 30, "champion 1 served")
    assert httpx.get(f"{server.url}/readyz").status_code == 200

    # Version 2 registered, its artifact deleted, then promoted by hand: the load fails.
    retrain(settings=settings, examples=make_training_examples(4_000, seed=4), arms=arms, config=config)
    target = registry_target(settings)
    client = client_for(target.tracking_uri)
    shutil.rmtree(Path(urlparse(client.get_model_version_download_uri(target.model_name, "2")).path))
    promote(target, "2", force=True)

    def alert() -> sa.Row | None:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "select message, details from ops.alerts where kind = 'model_unavailable' "
                    "and details ->> 'where' = 'realtime' and details ->> 'version' = '2'"
                )
            ).first()

    row = _until(alert, 30, "the model_unavailable alert")
    assert "could not load champion version 2 and keeps serving version 1" in row.message
    assert _model_version(server, token, campaign_id) == "1"  # still the previous champion
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 503
    assert any(
        x.startswith("champion version 2 failed to load, still serving version 1")
        for x in r.json()["reasons"]
    )


def test_a_service_started_before_its_database_exists_decides_once_it_does(launch, scratch_db, database_url):
    from pipelines import migrate
    from pipelines.apikeys import create_key

    make, admin = scratch_db
    url = make("late_db")  # not created yet: every connection fails
    server = launch(DATABASE_URL=url, MLFLOW_TRACKING_URI=database_url, REALTIME_REFRESH_SECONDS="0.5")
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 503
    assert "the decision engine has no statistics yet: the database is unreachable" in r.text

    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{url.rsplit("/", 1)[1]}"'))
    late = sa.create_engine(url)
    try:
        migrate.upgrade(late)
        campaign_id = add_world(late, CUSTOMERS[:2])
        token = create_key(late, "late-service", "service")[1]

        def decided() -> httpx.Response | None:
            r = optimize(server, token, campaign_id, CUSTOMERS[0])
            return r if r.status_code == 200 else None

        got = _until(decided, 20, "a decision from the late database").json()
        with late.connect() as conn:
            assert (
                conn.execute(
                    sa.text("select count(*) from ops.decisions where decision_id = :d"),
                    {"d": got["decision_id"]},
                ).scalar_one()
                == 1
            )
        _until(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 10, "ready")
    finally:
        late.dispose()
