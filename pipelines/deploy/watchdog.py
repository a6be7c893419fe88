"""Stop a deployment's process groups when the process that started them dies without stopping them.

`AirflowCluster` starts each component in a session of its own, so a signal to the starting
process (a test runner killed by a timeout, say) never reaches them, and a SIGKILL runs no
clean-up at all: the scheduler and Celery workers would keep running, take the next cluster's
share of the machine and poll the shared Redis. The guard is a small child process that reads
process-group ids on its stdin; when stdin reaches end of file — the owner closed it on a normal
stop, or the owner died and the kernel closed it — it sends SIGTERM to every group it was given,
and SIGKILL to what is left after a grace period. Nothing else holds the pipe's write end
(`subprocess` closes inherited descriptors), so end of file means exactly that the owner is gone.

Run as ``python -m pipelines.deploy.watchdog [grace_seconds]``; `ProcessGuard` is the owner's side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _signal_groups(groups: set[int], sig: signal.Signals) -> set[int]:
    """Signal each group; return the groups that still exist."""
    alive = set()
    for group in groups:
        try:
            os.killpg(group, sig)
            alive.add(group)
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def watch(stdin, grace: float) -> None:
    groups: set[int] = set()
    for line in stdin:  # blocks until the owner writes a group id or its end of the pipe closes
        if line.strip():
            groups.add(int(line))
    # Ignore the owner's Ctrl-C, delivered to its whole foreground group: the clean-up must finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    alive = _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = _signal_groups(alive, 0)  # signal 0 only asks whether the group exists
    _signal_groups(alive, signal.SIGKILL)


class ProcessGuard:
    """The owner's side: `guard(pid)` for each group leader; `close()` on a normal stop."""

    def __init__(self, grace: float = 20.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.deploy.watchdog", str(grace)],
            stdin=subprocess.PIPE,
            text=True,
            # Its own session: a signal to the owner's process group (a CI timeout) must not stop it.
            start_new_session=True,
        )

    def guard(self, group: int) -> None:
        self.process.stdin.write(f"{group}\n")
        self.process.stdin.flush()

    def close(self, timeout: float = 60.0) -> None:
        """End the guard: it then stops any guarded group that is still running, and exits."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=timeout)


if __name__ == "__main__":
    watch(sys.stdin, float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
