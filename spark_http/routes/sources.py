"""``/api/v1/sources``: the servers where workflows live."""

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from spark_core.models import Source, SourceId, SourceStatus
from spark_core.ports import SourceFilter
from spark_core.services.sources import SourceChanges
from spark_http.auth import SECURITY_SCHEME
from spark_http.dependencies import DEFAULT_LIMIT, Limit, Offset, Sources
from spark_http.schemas import (
    PageOut,
    SourceDeleted,
    SourceIn,
    page_out,
    require_all,
    source_out,
)

_REQUIRED = ("name", "source_type", "url")


class SourceController(Controller):
    """Create, list, read, change, check and delete sources."""

    path = "/api/v1/sources"
    tags = ["sources"]
    security = [{SECURITY_SCHEME: []}]

    @post(["", "/"])
    async def create_source(self, sources: Sources, data: JSONBody[SourceIn]) -> Source:
        """Add a source. It is checked against its server first (health, version, key);
        an unreachable server or a refused key is a 400 and nothing is stored."""
        return source_out(
            await sources.add(
                name=data.name,
                source_type=data.source_type,
                url=data.url,
                api_key=data.api_key,
                verify_tls=data.verify_tls,
            )
        )

    @get(["", "/"])
    async def list_sources(
        self,
        *,
        sources: Sources,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        status: FromQuery[SourceStatus | None] = None,
        source_type: FromQuery[str | None] = None,
    ) -> PageOut[Source]:
        """List sources, oldest first; filter by ``status`` and ``source_type``."""
        page = await sources.list(
            SourceFilter(status=status, source_type=source_type),
            limit=limit,
            offset=offset,
        )
        return page_out(page, source_out)

    @get("/{source_id:str}")
    async def get_source(self, sources: Sources, source_id: FromPath[str]) -> Source:
        """Read one source. Its API key is never returned."""
        return source_out(await sources.get(SourceId(source_id)))

    @patch("/{source_id:str}")
    async def update_source(
        self, sources: Sources, source_id: FromPath[str], data: JSONBody[SourceChanges]
    ) -> Source:
        """Change some fields of a source; a new URL, type or key is checked against the
        server first. ``"api_key": null`` removes the key."""
        return source_out(await sources.update(SourceId(source_id), data))

    @put("/{source_id:str}")
    async def replace_source(
        self, sources: Sources, source_id: FromPath[str], data: JSONBody[SourceChanges]
    ) -> Source:
        """Replace a source: ``name``, ``source_type`` and ``url`` are required and every field
        is set as at creation (a key left out is removed); a body without them is a 400 naming
        them. To change some fields only, use PATCH."""
        require_all(data, _REQUIRED, "source")
        return source_out(
            await sources.replace(
                SourceId(source_id),
                name=str(data.name),
                source_type=str(data.source_type),
                url=str(data.url),
                api_key=None if not isinstance(data.api_key, str) else data.api_key,
                verify_tls=data.verify_tls if isinstance(data.verify_tls, bool) else True,
            )
        )

    @delete("/{source_id:str}", status_code=200)
    async def delete_source(self, sources: Sources, source_id: FromPath[str]) -> SourceDeleted:
        """Delete a source with its workflows, their schedules and their tasks; the answer
        counts what was removed."""
        return SourceDeleted.of(await sources.delete(SourceId(source_id)))

    @post("/{source_id:str}/check", status_code=200)
    async def check_source(self, sources: Sources, source_id: FromPath[str]) -> Source:
        """Check a source against its server now, recording ``status`` and ``version_info``.
        A failed check marks it ``inactive`` and answers 400 with the reason."""
        return source_out(await sources.check(SourceId(source_id)))

