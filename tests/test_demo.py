"""`make demo`'s path end to end: embedded servers from an empty data dir, stop, start again."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "winnow_demo"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 240) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in demo output:\n{''.join(self.lines)[-5000:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=90)
        self._reader.join(timeout=5)
        return code


def login(base: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/login/", timeout=10)
    response = session.post(
        f"{base}/login/",
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    assert response.url == f"{base}/", response.text[:500]
    return session


def sample_count(session: requests.Session, base: str) -> int:
    page = session.get(f"{base}/datasets/python-docs-sample/", timeout=30)
    assert page.status_code == 200
    match = re.search(r'id="document-count">([\d,]+)<', page.text)
    assert match, page.text[:2000]
    return int(match.group(1).replace(",", ""))


def test_demo_from_nothing_serves_sample_data_and_keeps_it_across_restarts(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "WINNOW_EMBEDDED", "WINNOW_SECRET_KEY"}
    }
    env.update(WINNOW_DATA_DIR=str(data_dir), WINNOW_PORT=str(port), PYTHONUNBUFFERED="1")
    base = f"http://127.0.0.1:{port}"

    first = Demo(env)
    try:
        password = first.wait_for(r"admin user: admin\s+password: (\S+)").group(1)
        run_path = first.wait_for(r"web-quality pipeline queued on the sample: \S+?(/runs/\d+/)")
        first.wait_for(r"Winnow is running at")
        session = login(base, password)
        count = sample_count(session, base)
        assert count > 2000
        docs = session.get(f"{base}/datasets/python-docs-sample/", timeout=30).text
        assert "doc-" in docs
        # The worker runs the default pipeline over the sample: wait for it to finish.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            page = session.get(f"{base}{run_path.group(1)}", timeout=30).text
            if 'id="run-status">Succeeded<' in page:
                break
            assert 'id="run-status">Failed<' not in page, page[:3000]
            time.sleep(1)
        else:
            raise AssertionError("the web-quality run did not finish within 240 s")
    finally:
        assert first.stop() == 0
    output = "".join(first.lines)
    assert "stopped embedded redis, postgres" in output, output[-3000:]
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    second = Demo(env)
    try:
        second.wait_for(r"Winnow is running at")
        assert not any("password" in line for line in second.lines)
        assert not any("pipeline queued" in line for line in second.lines)
        assert sample_count(login(base, password), base) == count
    finally:
        assert second.stop() == 0
