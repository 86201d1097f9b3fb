from __future__ import annotations

import signal
import subprocess
import sys

from curation.workers import stop_children

# Ignores SIGTERM, then says so: the parent signals only after the handler is in place.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_children_terminates_running_children_and_skips_finished_ones() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_children([done, running], timeout=10)
    assert done.returncode == 0
    assert running.returncode == -signal.SIGTERM


def test_stop_children_kills_a_child_that_ignores_sigterm() -> None:
    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == "ready\n"
    stop_children([stubborn], timeout=0.5)
    stubborn.stdout.close()
    assert stubborn.returncode == -signal.SIGKILL
