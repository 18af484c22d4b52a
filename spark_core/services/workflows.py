"""Use cases for workflows: the remote catalogue and the local, synced one."""

import asyncio
import builtins
import logging

import msgspec

from spark_core.errors import NotFoundError, RemoteNotFoundError, SourceError, ValidationError
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
    RunTarget,
    SourceFilter,
    SourceRepository,
    WorkflowFilter,
    WorkflowPatch,
    WorkflowRepository,
)
from spark_core.services.sources import SourceService
from spark_core.urls import check_webhook_url, normalise_url

logger = logging.getLogger(__name__)

MAX_SOURCES_SCANNED = 100


class RemoteListing(msgspec.Struct, frozen=True, kw_only=True):
    """A remote flow together with the source it lives on."""

    flow: RemoteFlow
    source: Source


class UnlistedSource(msgspec.Struct, frozen=True, kw_only=True):
    """A source whose flows could not be listed, and why."""

    source: Source
    reason: str


class RemoteCatalogue(msgspec.Struct, frozen=True, kw_only=True):
    """What the sources offer, and the sources that could not say."""

    listings: list[RemoteListing]
    unlisted: list[UnlistedSource]


class WorkflowChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update of a workflow's local settings; unset fields stay as they are."""

    max_concurrency: int | msgspec.UnsetType | None = msgspec.UNSET
    webhook_url: str | msgspec.UnsetType | None = msgspec.UNSET


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
        """Flows available on one source, or on every active source (see ``browse_remote``)."""
        return (await self.browse_remote(source_id=source_id, source_url=source_url)).listings

    async def browse_remote(
        self, *, source_id: SourceId | None = None, source_url: str | None = None
    ) -> RemoteCatalogue:
        """Flows available on one source, or on every active source.

        Asking one source surfaces its failure; across all sources, a failing source is
        logged and named in ``unlisted`` so that one bad server does not hide the others.
        """
        narrowed = await self._narrowed_source(source_id, source_url)
        if narrowed is not None:
            flows = await (await self._sources.connect(narrowed)).list_flows()
            return RemoteCatalogue(
                listings=[RemoteListing(flow=flow, source=narrowed) for flow in flows],
                unlisted=[],
            )
        active = await self._active_sources()
        clients = [await self._sources.connect(source) for source in active]
        results = await asyncio.gather(
            *(client.list_flows() for client in clients),
            return_exceptions=True,
        )
        listings: list[RemoteListing] = []
        unlisted: list[UnlistedSource] = []
        for source, result in zip(active, results, strict=True):
            if isinstance(result, SourceError):
                logger.warning("Listing flows of source %s failed: %s", source.url, result.message)
                unlisted.append(UnlistedSource(source=source, reason=result.message))
                continue
            if isinstance(result, BaseException):
                raise result
            listings.extend(RemoteListing(flow=flow, source=source) for flow in result)
        return RemoteCatalogue(listings=listings, unlisted=unlisted)

    async def get_remote(
        self, flow_id: str, *, source_id: SourceId | None = None, source_url: str | None = None
    ) -> RemoteListing:
        """One remote flow with its full definition, from the named source, or else from the
        one active source that has it (on several, the caller is asked to name one)."""
        narrowed = await self._narrowed_source(source_id, source_url)
        if narrowed is not None:
            try:
                flow = await (await self._sources.connect(narrowed)).get_flow(flow_id)
            except RemoteNotFoundError as exc:
                raise NotFoundError(
                    f"No flow {flow_id} on source {narrowed.name} ({narrowed.url})"
                ) from exc
            return RemoteListing(flow=flow, source=narrowed)
        active = await self._active_sources()
        results = await asyncio.gather(
            *(self._lookup(source, flow_id) for source in active), return_exceptions=True
        )
        found: list[RemoteListing] = []
        unreachable: list[Source] = []
        for source, result in zip(active, results, strict=True):
            if isinstance(result, SourceError):
                logger.warning("Looking up flow on source %s failed: %s", source.url,
                               result.message)
                unreachable.append(source)
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                found.append(result)
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(f"{item.source.name} ({item.source.url})" for item in found)
            raise ValidationError(
                f"Flow {flow_id} is on several sources: {names}; say which with source_id or "
                "source_url",
                errors=[("source_id", "required: the flow is on several sources")],
            )
        asked = ", ".join(source.url for source in active) or "none active"
        missing = f"No flow {flow_id} on any active source ({asked})"
        if unreachable:
            missing += "; could not ask " + ", ".join(source.url for source in unreachable)
        raise NotFoundError(missing)

    async def _lookup(self, source: Source, flow_id: str) -> RemoteListing | None:
        """``flow_id`` on ``source``, or None when the source has no such flow."""
        try:
            flow = await (await self._sources.connect(source)).get_flow(flow_id)
        except RemoteNotFoundError:
            return None
        return RemoteListing(flow=flow, source=source)

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

    async def get(self, id_or_remote_id: str, *, definition: bool = True) -> Workflow:
        """One workflow by local id or by remote flow id; without ``definition``, its ``data``
        is left out (``None``)."""
        workflow = await self._workflows.find(id_or_remote_id, definition=definition)
        if workflow is None:
            raise NotFoundError(f"Workflow {id_or_remote_id} not found")
        return workflow

    async def run_target(self, id_or_remote_id: str, *,
                         remembered: bool = False) -> RunTarget:
        """What a run of a workflow (by local or remote id) needs: the workflow without its
        definition, its source and the source's sealed key, read at once (``remembered``: as
        ``WorkflowRepository.run_target``)."""
        return await self._workflows.run_target(id_or_remote_id, remembered=remembered)

    async def set_max_concurrency(
        self, id_or_remote_id: str, max_concurrency: int | None
    ) -> Workflow:
        """Let at most ``max_concurrency`` runs of a workflow be ``running`` at once, across
        all nodes (the others wait ``pending``); None lifts the limit."""
        return await self.update(id_or_remote_id,
                                 WorkflowChanges(max_concurrency=max_concurrency))

    async def set_webhook_url(self, id_or_remote_id: str, webhook_url: str | None) -> Workflow:
        """Announce a workflow's failed and recovered runs at ``webhook_url`` too (besides the
        global ``SPARK_WEBHOOK_URL``); None stops that."""
        return await self.update(id_or_remote_id, WorkflowChanges(webhook_url=webhook_url))

    async def update(self, id_or_remote_id: str, changes: WorkflowChanges) -> Workflow:
        """Apply ``changes`` to a workflow's local settings in one write; an empty change reads
        it. ``ValidationError`` for a limit below 1 or a webhook URL that is not http(s)."""
        limit, url = changes.max_concurrency, changes.webhook_url
        if isinstance(limit, int) and limit < 1:
            raise ValidationError(
                f"max_concurrency must be at least 1 (or null for no limit), not {limit}",
                errors=[("max_concurrency", "must be at least 1, or null")],
            )
        if isinstance(url, str):
            url = check_webhook_url(url)
        workflow = await self.get(id_or_remote_id)
        if limit is msgspec.UNSET and url is msgspec.UNSET:
            return workflow
        return await self._workflows.update(workflow.id, WorkflowPatch(
            updated_at=self._clock.now(), max_concurrency=limit, webhook_url=url))

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

