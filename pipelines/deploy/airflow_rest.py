"""Airflow 3's public REST API (``/api/v2``), the calls an operator (or a test) makes on a deployment.

The token comes from the SimpleAuthManager (``GET /auth/token`` when every user is an admin, as
`airflow_cluster` configures it; ``POST /auth/token`` with a username and password otherwise).
"""

from __future__ import annotations

import time
from datetime import date

import httpx

FINISHED = ("success", "failed")


class RunNotFinished(AssertionError):
    """A DAG run did not finish in time; the message lists its task instances' states."""


class AirflowRest:
    def __init__(self, base_url: str, username: str | None = None, password: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        if username:
            response = httpx.post(
                f"{self.base_url}/auth/token", json={"username": username, "password": password}
            )
        else:
            response = httpx.get(f"{self.base_url}/auth/token")
        response.raise_for_status()
        token = response.json()["access_token"]
        self.http = httpx.Client(
            base_url=f"{self.base_url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def _json(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(
                f"{method} {path}: {response.status_code} {response.text[:500]}",
                request=response.request,
                response=response,
            )
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Until the DAG processor has parsed ``dag_id`` (the API knows it), or raise."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            if time.monotonic() > deadline:
                errors = self.http.get("/importErrors").text[:2000]
                raise AssertionError(f"{dag_id} not parsed after {timeout:.0f} s; import errors: {errors}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> dict:
        return self._json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: date, conf: dict | None = None) -> str:
        """A manual run for ``logical_date`` (midnight UTC, as a scheduled run's); returns its run id."""
        body = {"logical_date": f"{logical_date.isoformat()}T00:00:00Z", "conf": conf or {}}
        return self._json("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run (mapped ones one per index), with state and hostname."""
        page = self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})
        return page["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 2) -> dict:
        """The run once it has finished; RunNotFinished naming each task's state after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise RunNotFinished(
                    f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s: "
                    f"{describe(self.task_instances(dag_id, run_id))}"
                )
            time.sleep(poll)


def describe(task_instances: list[dict]) -> str:
    """``task[map_index]=state@hostname`` for each task instance, in start order."""

    def key(ti: dict) -> tuple[str, str, int]:
        return (ti.get("start_date") or "~", ti["task_id"], ti.get("map_index", -1))

    def name(ti: dict) -> str:
        index = ti.get("map_index", -1)
        return f"{ti['task_id']}[{index}]" if index >= 0 else ti["task_id"]

    return ", ".join(
        f"{name(ti)}={ti['state']}@{ti.get('hostname') or '-'}" for ti in sorted(task_instances, key=key)
    )
