"""Use cases for workflows: the remote catalogue and the local, synced one."""

import asyncio
import builtins
import logging

import msgspec

from spark_core.errors import NotFoundError, RemoteNotFoundError, SourceError
from spark_core.models import (
    Page,
    RemoteFlow,
    Source,
    SourceId,
    SourceStatus,
    Workflow,
    WorkflowDeletion,
    WorkflowId,
    WorkflowSummary,
    new_id,
)
from spark_core.ports import (
    Clock,
    SourceFilter,
    SourceRepository,
    WorkflowFilter,
    WorkflowRepository,
)
from spark_core.services.sources import SourceService
from spark_core.urls import normalise_url

logger = logging.getLogger(__name__)

MAX_SOURCES_SCANNED = 100


class RemoteListing(msgspec.Struct, frozen=True, kw_only=True):
    """A remote flow together with the source it lives on."""

    flow: RemoteFlow
    source: Source


class WorkflowService:
    """Lists what sources offer, syncs it into the catalogue, and manages the catalogue."""

    def __init__(
        self,
        *,
        workflows: WorkflowRepository,
        source_records: SourceRepository,
        sources: SourceService,
        clock: Clock,
    ) -> None:
        self._workflows = workflows
        self._source_records = source_records
        self._sources = sources
        self._clock = clock

    async def list_remote(
        self, *, source_id: SourceId | None = None, source_url: str | None = None
    ) -> list[RemoteListing]:
        """Flows available on one source, or on every active source.

        Asking one source surfaces its failure; across all sources, a failing source is
        logged and left out so that one bad server does not hide the others.
        """
        narrowed = await self._narrowed_source(source_id, source_url)
        if narrowed is not None:
            flows = await (await self._sources.connect(narrowed)).list_flows()
            return [RemoteListing(flow=flow, source=narrowed) for flow in flows]
        active = await self._active_sources()
        clients = [await self._sources.connect(source) for source in active]
        results = await asyncio.gather(
            *(client.list_flows() for client in clients),
            return_exceptions=True,
        )
        listings: list[RemoteListing] = []
        for source, result in zip(active, results, strict=True):
            if isinstance(result, SourceError):
                logger.warning("Listing flows of source %s failed: %s", source.url, result.message)
                continue
            if isinstance(result, BaseException):
                raise result
            listings.extend(RemoteListing(flow=flow, source=source) for flow in result)
        return listings

    async def get_remote(
        self, flow_id: str, *, source_id: SourceId | None = None, source_url: str | None = None
    ) -> RemoteListing:
        """One remote flow with its full definition, from the named source or the first
        active source that has it."""
        narrowed = await self._narrowed_source(source_id, source_url)
        candidates = [narrowed] if narrowed is not None else await self._active_sources()
        for source in candidates:
            try:
                flow = await (await self._sources.connect(source)).get_flow(flow_id)
            except RemoteNotFoundError:
                continue
            except SourceError as exc:
                if narrowed is not None:
                    raise
                logger.warning("Looking up flow on source %s failed: %s", source.url, exc.message)
                continue
            return RemoteListing(flow=flow, source=source)
        raise NotFoundError(f"Remote flow {flow_id} not found on any active source")

    async def sync(
        self,
        flow_id: str,
        *,
        source_id: SourceId | None = None,
        source_url: str | None = None,
        input_component: str | None = None,
        output_component: str | None = None,
    ) -> Workflow:
        """Copy a remote flow into the catalogue; syncing again updates it in place."""
        listing = await self.get_remote(flow_id, source_id=source_id, source_url=source_url)
        flow, source = listing.flow, listing.source
        now = self._clock.now()
        workflow = Workflow(
            id=WorkflowId(new_id()),
            source_id=source.id,
            source=source.url,
            remote_flow_id=flow.remote_id,
            name=flow.name,
            flow_type=flow.flow_type,
            description=flow.description,
            input_component=input_component or flow.input_component,
            output_component=output_component or flow.output_component,
            data=flow.data,
            folder_id=flow.folder_id,
            folder_name=flow.folder_name,
            icon=flow.icon,
            icon_bg_color=flow.icon_bg_color,
            liked=flow.liked,
            tags=flow.tags,
            flow_version=flow.flow_version,
            is_component=flow.is_component,
            created_at=now,
            updated_at=now,
        )
        return await self._workflows.upsert(workflow)

    async def list(
        self, filters: WorkflowFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> Page[WorkflowSummary]:
        """The catalogue with each workflow's latest run and task counts."""
        filters = filters or WorkflowFilter()
        if filters.source_url:
            filters = msgspec.structs.replace(filters, source_url=normalise_url(filters.source_url))
        return await self._workflows.list(filters, limit=limit, offset=offset)

    async def get(self, id_or_remote_id: str) -> Workflow:
        """One workflow by local id or by remote flow id."""
        workflow = await self._workflows.find(id_or_remote_id)
        if workflow is None:
            raise NotFoundError(f"Workflow {id_or_remote_id} not found")
        return workflow

    async def delete(self, id_or_remote_id: str) -> WorkflowDeletion:
        """Remove a workflow with its schedules and tasks."""
        return await self._workflows.delete((await self.get(id_or_remote_id)).id)

    async def _active_sources(self) -> builtins.list[Source]:
        page = await self._source_records.list(
            SourceFilter(status=SourceStatus.ACTIVE), limit=MAX_SOURCES_SCANNED, offset=0
        )
        return page.items

    async def _narrowed_source(
        self, source_id: SourceId | None, source_url: str | None
    ) -> Source | None:
        if source_id is not None:
            return await self._source_records.get(source_id)
        if source_url:
            url = normalise_url(source_url)
            source = await self._source_records.find_by_url(url)
            if source is None:
                raise NotFoundError(
                    f"Source {url} not found", errors=[("source_url", "no source with this URL")]
                )
            return source
        return None

