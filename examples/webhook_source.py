"""A custom source type: a plain HTTP webhook, registered with Spark from outside its packages.

The webhook protocol is the smallest one that can run a workflow:

- ``GET <url>/`` answers 2xx when the server is up (401 or 403 when the key is refused);
- ``POST <url>/<flow>`` with JSON ``{"input": "..."}`` runs the flow named by the path and
  answers ``{"output": "..."}``;
- the key, if the source has one, travels as ``Authorization: Bearer <key>``.

A webhook server has no catalogue, so any path is a flow: ``get_flow`` describes whatever id it
is asked about and ``list_flows`` offers nothing. Register the type with
``spark_adapters.connect(source_types={"webhook": WebhookSource})`` or on a ``SourceRegistry``;
the core never learns that it exists.
"""

from typing import Any

import aiohttp
import msgspec

from spark_adapters import SourceHttp
from spark_core import RemoteFlow, RunRequest, RunResult, Source

WEBHOOK = "webhook"
"""The source type (and flow type) this adapter is registered under."""


class _Answer(msgspec.Struct):
    output: str | None = None



class WebhookSource:
    """The ``WorkflowSource`` port over a plain JSON webhook."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: Source,
        api_key: str | None,
        *,
        request_timeout: float = 10.0,
    ) -> None:
        self._http = SourceHttp(
            session,
            base_url=source.url,
            label=f"Webhook at {source.url}",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            secrets=[api_key],
            verify_tls=source.verify_tls,
            request_timeout=request_timeout,
        )

    async def check(self) -> dict[str, Any]:
        """The server answers ``GET /`` and accepts the key."""
        self._http.ensure_ok(await self._http.get("/"))
        return {"source_type": WEBHOOK}

    async def list_flows(self) -> list[RemoteFlow]:
        """Nothing: a webhook server has no catalogue (sync a flow by its path instead)."""
        return []

    async def get_flow(self, remote_id: str) -> RemoteFlow:
        """The flow at path ``remote_id``."""
        return RemoteFlow(remote_id=remote_id, name=remote_id, flow_type=WEBHOOK)

    async def run(self, request: RunRequest) -> RunResult:
        """POST the input to ``<url>/<flow>`` and read the ``output``."""
        response = await self._http.request(
            "POST",
            f"/{request.remote_flow_id}",
            json_body={"input": request.input_value},
            run_timeout=request.timeout,
        )
        raw = self._http.decode_any(response)
        answer = self._http.convert(response, raw, _Answer)
        return RunResult(output_text=answer.output, raw=raw)
