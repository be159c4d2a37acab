"""Shared pieces of the hostile tests: an in-process CLI run against a fake API, and the
promises every run must keep whatever the input (issue 6, DESIGN section 5).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
from typer.testing import CliRunner

from tests.conftest import API_KEY, MESSAGE_ID

#: DESIGN section 5's exit codes. 1 (internal error) is in the table but is a bug when it happens.
DESIGN_EXIT_CODES = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 130})
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# What a terminal would act on: C0 controls other than tab and newline, DEL, C1 controls.
TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Responder = Callable[[httpx.Request], httpx.Response]


def accepted(request: httpx.Request) -> httpx.Response:
    """pytest-httpx's "202 to anything", as a responder."""
    return httpx.Response(
        202, json={"code": "WA202", "message": "Request Accepted", "data": {"message_id": MESSAGE_ID}, "error": {}}
    )


@dataclass
class FakeApi:
    """Every request httpx would send, answered by ``responder`` instead of the network."""

    responder: Responder = accepted
    requests: list[httpx.Request] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def handle(self, transport: Any, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.responder(request)


@contextlib.contextmanager
def fake_api(responder: Responder = accepted) -> Iterator[FakeApi]:
    """Patch httpx's transports for the duration of one example (a fresh recorder each time)."""
    api = FakeApi(responder)

    def handle(transport: Any, request: httpx.Request) -> httpx.Response:
        return api.handle(transport, request)

    with mock.patch.object(httpx.HTTPTransport, "handle_request", handle), mock.patch(
        "kaleyra_cli.client.time.sleep", api.waits.append
    ):
        yield api


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None
    requests: list[httpx.Request]

    @property
    def output(self) -> str:
        return f"exit {self.exit_code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}\n--- exception ---\n{self.exception!r}"


def invoke(args: list[str], *, input: str | bytes | None = None, env: dict[str, str | None] | None = None, responder: Responder = accepted) -> Run:
    """Run ``kwa *args`` in-process against a fake API; returns what it printed and sent."""
    from kaleyra_cli.cli import app

    with fake_api(responder) as api:
        result = CliRunner().invoke(app, args, input=input, env=env, catch_exceptions=True)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return Run(result.exit_code, result.stdout, result.stderr, exception, list(api.requests))


def check_promises(run: Run, *, key: str = API_KEY, json_mode: bool = False, human: bool = True) -> None:
    """The promises of issue 6 that hold for every run, whatever the input.

    Exit code in DESIGN section 5 and never 1 (a bug); no traceback; nothing sent on exit 2;
    every request sent has an E.164 ``to`` and a non-blank body of at most 4096 UTF-16 units;
    the API key never printed; in JSON mode stdout is one JSON document; in human modes no
    control character reaches the terminal.
    """
    assert run.exception is None, run.output
    assert run.exit_code in DESIGN_EXIT_CODES, run.output
    assert run.exit_code != 1, run.output
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream, run.output
        if len(key) >= 8:
            assert key not in stream, run.output
    if run.exit_code == 2:
        assert run.requests == [], run.output
    for request in run.requests:
        check_request(request)
    if json_mode and run.stdout.strip():
        json.loads(run.stdout)  # exactly one document
    if human and not json_mode:
        assert not TERMINAL_CONTROL.search(run.stdout), run.output
        assert not TERMINAL_CONTROL.search(run.stderr), run.output


def check_request(request: httpx.Request) -> None:
    """A request that left: E.164 ``to`` (and business number), a body within the limit, the key header."""
    payload = json.loads(request.content)
    mo = payload["messaging_object"]
    assert E164.match(mo["to"]), mo["to"]
    body = mo["text"]["body"]
    assert isinstance(body, str) and body.strip(), body
    assert len(body.encode("utf-16-le")) // 2 <= 4096
    number = request.url.path.split("/whatsapp/")[1].split("/")[0]
    assert E164.match(number.replace("%2B", "+")), request.url
