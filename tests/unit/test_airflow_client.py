"""The run's Airflow API client against a real HTTP server that is sometimes too slow: a read
is asked again, a write is not (it may have been done), and the error says which call."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from edihub.stack.airflow import GET_TRIES, AirflowClient, AirflowError


class SlowApi(BaseHTTPRequestHandler):
    """Answers /auth/token and /api/v2/dags/*; the first ``slow`` API calls take too long."""

    slow = 0
    calls: ClassVar[list[str]] = []

    def _answer(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/auth/token":
            self._answer({"access_token": "t"})
            return
        self._api()

    def do_GET(self) -> None:
        self._api()

    def _api(self) -> None:
        type(self).calls.append(f"{self.command} {self.path}")
        if len(type(self).calls) <= type(self).slow:
            time.sleep(0.6)  # past the client's 0.2 s
        self._answer({"dag_id": "collect_fse"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    SlowApi.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_read_not_answered_in_time_is_asked_again(api: str) -> None:
    SlowApi.slow = GET_TRIES - 1
    with AirflowClient(api, "admin", "pw", timeout=0.2) as client:
        assert client.dag("collect_fse") == {"dag_id": "collect_fse"}
    assert SlowApi.calls == ["GET /api/v2/dags/collect_fse"] * GET_TRIES


def test_a_read_never_answered_names_the_call(api: str) -> None:
    SlowApi.slow = GET_TRIES
    with (
        AirflowClient(api, "admin", "pw", timeout=0.2) as client,
        pytest.raises(AirflowError, match=r"GET /dags/collect_fse: no answer .* \(3 tries\)"),
    ):
        client.dag("collect_fse")


def test_a_write_is_not_sent_twice(api: str) -> None:
    SlowApi.slow = 1
    with (
        AirflowClient(api, "admin", "pw", timeout=0.2) as client,
        pytest.raises(AirflowError, match=r"POST /dags/collect_fse/dagRuns: no answer"),
    ):
        client.trigger("collect_fse")
    assert SlowApi.calls == ["POST /api/v2/dags/collect_fse/dagRuns"]
