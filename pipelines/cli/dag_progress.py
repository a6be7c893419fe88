"""A progress bar over the daily DAG's steps, read from the run's own log as Airflow writes it.

`airflow dags test` runs in a subprocess (pipelines/orchestration.py) and logs
``[DAG TEST] starting task_id=X map_index=N`` and ``[DAG TEST] end task task_id=X ...`` per task:
a thread tails that log and moves the bar. Only on a terminal: piped output and logs stay clean.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# The daily DAG's tasks in order, as a person names them; decide runs per (campaign, bucket)
# and publish per campaign.
STEPS = {
    "prepare": "prepare",
    "wait_for_inbox": "wait for the inbox",
    "ingest": "ingest",
    "validate_batch": "validate",
    "dbt_build": "transform (dbt)",
    "active_campaigns": "campaigns of the day",
    "decide_jobs": "decide tasks",
    "decide": "decide",
    "publish": "publish",
    "monitor": "monitor",
}
PER_CAMPAIGN = ("decide", "publish")
_TASK_EVENT = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\S+) map_index=(-?\d+)")
POLL_SECONDS = 0.2


class StepProgress:
    """Moves a rich task along the DAG's tasks as their log lines arrive."""

    def __init__(self, progress: Progress, campaigns: list[str], n_buckets: int = 1) -> None:
        self.progress, self.campaigns, self.n_buckets = progress, campaigns, n_buckets
        total = len(STEPS) - len(PER_CAMPAIGN) + (n_buckets + 1) * len(campaigns)
        self.task = progress.add_task("starting Airflow", total=total)

    def feed(self, line: str) -> None:
        event = _TASK_EVENT.search(line)
        if event is None:
            return
        what, task_id, index = event.group(1), event.group(2), int(event.group(3))
        if what == "end task":
            self.progress.advance(self.task)
            return
        label = STEPS.get(task_id, task_id)
        if task_id in PER_CAMPAIGN:
            per = self.n_buckets if task_id == "decide" else 1  # decide is mapped over buckets too
            which, bucket = divmod(index, per)
            label += " " + (self.campaigns[which] if 0 <= which < len(self.campaigns) else f"#{index}")
            if per > 1:
                label += f" bucket {bucket + 1}/{per}"
            if which >= len(self.campaigns):  # a campaign that became active since we counted
                self.progress.update(self.task, total=self.progress.tasks[0].total + 1)
        self.progress.update(self.task, description=label)


def tail(path: Path, on_line: Callable[[str], None], stop: threading.Event) -> None:
    """Call ``on_line`` with each complete line appended to ``path`` until ``stop`` is set and
    the file holds no more."""
    with path.open(errors="replace") as log:
        pending = ""
        while True:
            chunk = log.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    on_line(pending)
                    pending = ""
            elif stop.is_set():
                return
            else:
                time.sleep(POLL_SECONDS)


@contextmanager
def dag_progress(
    console: Console, campaigns: list[str], n_buckets: int = 1
) -> Iterator[Callable[[Path], None]]:
    """A ``follow`` callback for :func:`pipelines.orchestration.run_dag` that shows the bar."""
    stop, threads = threading.Event(), []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        steps = StepProgress(progress, campaigns, n_buckets)

        def follow(path: Path) -> None:
            thread = threading.Thread(target=tail, args=(path, steps.feed, stop), daemon=True)
            thread.start()
            threads.append(thread)

        outcome = "failed"
        try:
            yield follow
            outcome = "done"
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            progress.update(steps.task, description=outcome)
