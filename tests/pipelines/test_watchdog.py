"""The deployment's watchdog: guarded process groups stop when their owner dies without stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.deploy.watchdog import ProcessGuard

# An owner like a test runner: starts a long-lived child in a session of its own (as AirflowCluster
# does), guards it, prints the child's pid and waits to be killed.
OWNER = """
import subprocess, sys, time
from pipelines.deploy.watchdog import ProcessGuard
guard = ProcessGuard(grace=5)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
guard.guard(child.pid)
print(child.pid, guard.process.pid, flush=True)
time.sleep(300)
"""


def group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(group: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_exists(group):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_guarded_group_stops_when_the_owner_is_killed(kill):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child, watchdog = (int(pid) for pid in owner.stdout.readline().split())
    try:
        time.sleep(0.5)
        assert group_exists(child), "the guarded child should run while its owner lives"
        # The owner's whole process group, as a CI timeout kills a test run: no clean-up runs in
        # the owner, so only the watchdog (in a session of its own) can stop the child.
        os.killpg(owner.pid, kill)
        owner.wait(timeout=10)
        assert wait_gone(child), "the watchdog left the guarded group running after its owner died"
        assert wait_gone(watchdog), "the watchdog should exit once it has stopped its groups"
    finally:
        for group in (child, watchdog):
            if group_exists(group):
                os.killpg(group, signal.SIGKILL)


def test_closing_the_guard_stops_what_is_still_running():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    guard = ProcessGuard(grace=1)  # the child stays a zombie until we reap it: the grace runs out
    guard.guard(child.pid)
    time.sleep(0.3)
    assert child.poll() is None
    guard.close()
    assert child.wait(timeout=10) == -signal.SIGTERM
