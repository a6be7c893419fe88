"""The progress bar of `campaignopt daily`: moved by the run's own log, shown on a terminal only.

The unit test writes the lines `airflow dags test` logs per task (copied from a real run.log) into a
file while the bar tails it; the slow test runs the real command in a pseudo-terminal
(tests/dags/test_daily_dag.py checks that a piped run has no bar).
"""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.cli.dag_progress import dag_progress

CLI = str(Path(sys.executable).with_name("campaignopt"))
PREFIX = "2026-12-01T19:35:23.722626Z [info     ] [DAG TEST] "
SUFFIX = " [airflow.sdk.definitions.dag] loc=dag.py:1501\n"
TASKS = [("prepare", -1), ("wait_for_inbox", -1), ("ingest", -1), ("validate_batch", -1), ("dbt_build", -1),
         ("active_campaigns", -1), ("decide_jobs", -1), ("decide", 0), ("decide", 1), ("publish", 0),
         ("publish", 1), ("monitor", -1)]  # fmt: skip


def _run_log(path: Path, tasks: list[tuple[str, int]]) -> None:
    with path.open("a") as log:
        for task_id, index in tasks:
            log.write(f"{PREFIX}starting task_id={task_id} map_index={index}{SUFFIX}")
            log.write("2026-12-01T19:35:32Z [info     ] Task started [airflow.api_fastapi] hostname=vm\n")
            log.write(f"{PREFIX}end task task_id={task_id} map_index={index}{SUFFIX}")
            log.flush()


def test_the_bar_counts_every_task_of_the_log_and_names_the_campaign(tmp_path: Path) -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=100)
    log = tmp_path / "run.log"
    log.write_text("")
    with dag_progress(terminal, ["card-cashback", "cross-sell"]) as follow:
        follow(log)
        _run_log(log, TASKS[:9])
        deadline = time.monotonic() + 10  # the tail polls every 0.2 s, rich redraws 10 times a second
        while "9/12" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
        middle = out.getvalue()
        _run_log(log, TASKS[9:])
    shown = out.getvalue()
    assert "decide cross-sell" in middle and "9/12" in middle
    assert "12/12" in shown and "done" in shown and "\x1b[" in shown  # drawn with terminal codes


def _read_pty(fd: int, proc: subprocess.Popen) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_daily_shows_the_bar_on_a_terminal(clean_engine, inbox: Path) -> None:
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files

    day = date(2026, 11, 2)
    repo = Path(__file__).resolve().parents[2]
    apply_campaign(clean_engine, load_campaign(repo / "campaigns/card_cashback.yaml"))
    write_customer_files(inbox, day, 300, seed=5)
    leader, follower = pty.openpty()
    command = [CLI, "daily", "--date", day.isoformat()]
    env = os.environ | {"COLUMNS": "100"}
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = _read_pty(leader, proc)
    os.close(leader)
    assert proc.wait() == 0, shown
    assert "decide card-cashback" in shown and "10/10" in shown and "done" in shown, shown
    assert "KPIs so far" in shown  # the summary follows the bar
