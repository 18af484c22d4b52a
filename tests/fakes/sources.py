"""Hand-written fake source clients: remote flows in memory, scripted outcomes per run."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from spark_core.errors import (
    RemoteNotFoundError,
    SourceRejectedError,
    SourceUnavailableError,
    UnknownSourceTypeError,
)
from spark_core.models import PastRun, RemoteFlow, RunRequest, RunResult, Source

Outcome = RunResult | Exception


class FakeRemote:
    """One fake server: its flows, its key, and what its runs do."""

    def __init__(self, *, api_key: str | None = None, healthy: bool = True) -> None:
        self.api_key = api_key
        self.healthy = healthy
        self.flows: dict[str, RemoteFlow] = {}
        self.outcomes: list[Outcome] = []
        self.delay = 0.0
        self.runs: list[RunRequest] = []
        self.release: asyncio.Event | None = None
        self.check_release: asyncio.Event | None = None
        self.checks = 0
        self.history: dict[str, list[tuple[RunRequest, PastRun]]] = {}
        """Every run by session, in order, as the server remembers it."""
        self.finish_abandoned = False
        """Whether a run whose caller went away still finishes here (as a real server's does)."""
        self.history_error: Exception | None = None
        """Raised when asked for a run's history (the history route failing)."""
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The server's own clock, which stamps its runs."""

    def add_flow(self, remote_id: str, name: str = "", flow_type: str = "langflow") -> RemoteFlow:
        """Offer a flow on this server."""
        flow = RemoteFlow(remote_id=remote_id, name=name or remote_id, flow_type=flow_type,
                          input_component="ChatInput-1", output_component="ChatOutput-1")
        self.flows[remote_id] = flow
        return flow

    def remember(self, request: RunRequest, past: PastRun) -> None:
        """Record (or update: the same request object) a run in the session's history."""
        runs = self.history.setdefault(request.session_id, [])
        for index, (known, _) in enumerate(runs):
            if known is request:
                runs[index] = (request, past)
                return
        runs.append((request, past))

    def answer(self, request: RunRequest) -> Outcome:
        """The next scripted outcome, or an echo of the input."""
        if self.outcomes:
            return self.outcomes.pop(0)
        return RunResult(output_text=request.input_value, raw={"echo": request.input_value})


class FakeSource:
    """The ``WorkflowSource`` port over a ``FakeRemote``."""

    def __init__(self, remote: FakeRemote | None, api_key: str | None) -> None:
        self._remote = remote
        self._api_key = api_key

    def _server(self) -> FakeRemote:
        if self._remote is None or not self._remote.healthy:
            raise SourceUnavailableError("Could not reach the fake source")
        if self._remote.api_key is not None and self._api_key != self._remote.api_key:
            raise SourceRejectedError("The fake source rejected the API key", status=403)
        return self._remote

    async def check(self) -> dict[str, Any]:
        """Healthy and accepting the key (after ``check_release``, if set), or the matching
        error."""
        server = self._server()
        server.checks += 1
        if server.check_release is not None:
            await server.check_release.wait()
        return {"version": "fake-1.0"}

    async def list_flows(self) -> list[RemoteFlow]:
        """Every flow the fake offers."""
        return list(self._server().flows.values())

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """One flow, or ``RemoteNotFoundError``."""
        try:
            return self._server().flows[remote_id]
        except KeyError:
            raise RemoteNotFoundError(f"Flow {remote_id} not found", status=404) from None

    async def run(self, request: RunRequest) -> RunResult:
        """Record the request, wait if told to, and play the next outcome. A caller that goes
        away meanwhile leaves the run failed in the history, or finished with the next outcome
        when the server ``finish_abandoned``."""
        server = self._server()
        server.runs.append(request)
        started = PastRun(started_at=server.clock())
        server.remember(request, started)
        try:
            if server.release is not None:
                await server.release.wait()
            if server.delay:
                await asyncio.sleep(server.delay)
        except asyncio.CancelledError:
            if server.finish_abandoned:
                self._finish(server, request, started)
            else:
                server.remember(request, PastRun(started_at=started.started_at, failed=True))
            raise
        return self._finish(server, request, started)

    @staticmethod
    def _finish(server: FakeRemote, request: RunRequest, started: PastRun) -> RunResult:
        outcome = server.answer(request)
        if isinstance(outcome, Exception):
            server.remember(request, PastRun(started_at=started.started_at, failed=True))
            raise outcome
        server.remember(request, PastRun(started_at=started.started_at, result=outcome))
        return outcome

    async def find_run(self, request: RunRequest, *, since: datetime | None) -> PastRun | None:
        """The latest remembered run of the same flow and input in the request's session."""
        server = self._server()
        if server.history_error is not None:
            raise server.history_error
        matches = [
            past for known, past in server.history.get(request.session_id, [])
            if known.remote_flow_id == request.remote_flow_id
            and known.input_value == request.input_value
            and (since is None or past.started_at is None or past.started_at >= since)
        ]
        return matches[-1] if matches else None


class FakeConnector:
    """The ``SourceConnector`` port: URL → ``FakeRemote``; unknown URLs are unreachable."""

    def __init__(self, types: Sequence[str] = ("langflow", "automagik-hive")) -> None:
        self.remotes: dict[str, FakeRemote] = {}
        self._types = list(types)

    def add_remote(self, url: str, **options: Any) -> FakeRemote:
        """Put a fake server at ``url``."""
        remote = FakeRemote(**options)
        self.remotes[url] = remote
        return remote

    def source_types(self) -> Sequence[str]:
        """The source types this fake accepts."""
        return self._types

    def connect(self, source: Source, api_key: str | None) -> FakeSource:
        """A fake client for the remote at the source's URL."""
        if source.source_type not in self._types:
            raise UnknownSourceTypeError(f"Unknown source type '{source.source_type}'")
        return FakeSource(self.remotes.get(source.url), api_key)
