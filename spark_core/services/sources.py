"""Use cases for sources: the servers where workflows live."""

from typing import Any

import msgspec

from spark_core.errors import (
    ConflictError,
    SourceError,
    SourceValidationError,
    UnknownSourceTypeError,
    ValidationError,
)
from spark_core.models import (
    Page,
    Source,
    SourceDeletion,
    SourceId,
    SourceStatus,
    SourceType,
    new_id,
)
from spark_core.ports import (
    Clock,
    SecretBox,
    SourceConnector,
    SourceFilter,
    SourcePatch,
    SourceRepository,
    WorkflowSource,
)
from spark_core.urls import normalise_url

SOURCE_TYPE_ALIASES = {"hive": SourceType.HIVE.value}


class SourceChanges(msgspec.Struct, frozen=True, kw_only=True,
                    forbid_unknown_fields=True):
    """A partial update of a source; unset fields stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    source_type: str | msgspec.UnsetType = msgspec.UNSET
    url: str | msgspec.UnsetType = msgspec.UNSET
    api_key: str | msgspec.UnsetType | None = msgspec.UNSET
    status: SourceStatus | msgspec.UnsetType = msgspec.UNSET
    verify_tls: bool | msgspec.UnsetType = msgspec.UNSET


class SourceService:
    """Adds, lists, changes, checks and removes sources, validating each against its server.

    Every write names only the fields it changes, so a check that awaited the network for
    seconds never undoes a rename made meanwhile by another request or process.
    """

    def __init__(
        self,
        *,
        sources: SourceRepository,
        connector: SourceConnector,
        secrets: SecretBox,
        clock: Clock,
    ) -> None:
        self._sources = sources
        self._connector = connector
        self._secrets = secrets
        self._clock = clock

    def normalise_type(self, source_type: str) -> str:
        """The canonical name of a source type (``hive`` → ``automagik-hive``), if supported."""
        lowered = source_type.strip().lower()
        canonical = SOURCE_TYPE_ALIASES.get(lowered, lowered)
        supported = list(self._connector.source_types())
        if canonical not in supported:
            raise UnknownSourceTypeError(
                f"Unknown source type '{source_type}'; expected one of: {', '.join(supported)}",
                errors=[("source_type", f"must be one of: {', '.join(supported)}")],
            )
        return canonical

    async def add(
        self,
        *,
        name: str,
        source_type: str,
        url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
    ) -> Source:
        """Validate a new source against its server (health, version, key) and store it."""
        name = _required_name(name)
        canonical_type = self.normalise_type(source_type)
        normalised = normalise_url(url)
        if await self._sources.find_by_url(normalised) is not None:
            raise ConflictError(f"A source with URL {normalised} already exists")
        now = self._clock.now()
        source = Source(
            id=SourceId(new_id()),
            name=name,
            source_type=canonical_type,
            url=normalised,
            verify_tls=verify_tls,
            created_at=now,
            updated_at=now,
        )
        version_info = await self._validate(source, api_key)
        source = msgspec.structs.replace(source, version_info=version_info)
        sealed = self._secrets.seal(api_key) if api_key else None
        return await self._sources.add(source, sealed_key=sealed)

    async def list(
        self, filters: SourceFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> Page[Source]:
        """Sources, oldest first, optionally filtered by status and type."""
        filters = filters or SourceFilter()
        if filters.source_type is not None:
            canonical = SOURCE_TYPE_ALIASES.get(filters.source_type, filters.source_type)
            filters = msgspec.structs.replace(filters, source_type=canonical)
        return await self._sources.list(filters, limit=limit, offset=offset)

    async def get(self, source_id: SourceId) -> Source:
        """One source by id."""
        return await self._sources.get(source_id)

    async def update(self, source_id: SourceId, changes: SourceChanges) -> Source:
        """Apply a partial update; a new URL, type or key is validated against the server."""
        current = await self._sources.get(source_id)
        fields: dict[str, Any] = {}
        if not isinstance(changes.name, msgspec.UnsetType):
            fields["name"] = _required_name(changes.name)
        if not isinstance(changes.source_type, msgspec.UnsetType):
            fields["source_type"] = self.normalise_type(changes.source_type)
        if not isinstance(changes.url, msgspec.UnsetType):
            normalised = normalise_url(changes.url)
            other = await self._sources.find_by_url(normalised)
            if other is not None and other.id != source_id:
                raise ConflictError(f"A source with URL {normalised} already exists")
            fields["url"] = normalised
        if not isinstance(changes.verify_tls, msgspec.UnsetType):
            fields["verify_tls"] = changes.verify_tls
        if not isinstance(changes.status, msgspec.UnsetType):
            fields["status"] = changes.status

        updated = msgspec.structs.replace(current, **fields)
        api_key: str | None
        if isinstance(changes.api_key, msgspec.UnsetType):
            rekeyed, api_key = False, await self._open_key(source_id)
        else:
            rekeyed, api_key = True, changes.api_key or None
        reconnect = rekeyed or (updated.url, updated.source_type, updated.verify_tls) != (
            current.url, current.source_type, current.verify_tls
        )
        if reconnect:
            fields["version_info"] = await self._validate(updated, api_key)
            fields["status"] = SourceStatus.ACTIVE
        if rekeyed:
            fields["sealed_key"] = self._secrets.seal(api_key) if api_key else None
        patch = SourcePatch(updated_at=self._clock.now(), **fields)
        return await self._sources.update(source_id, patch)

    async def replace(
        self,
        source_id: SourceId,
        *,
        name: str,
        source_type: str,
        url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
    ) -> Source:
        """Replace every field of a source (as at creation), validating it again."""
        changes = SourceChanges(
            name=name, source_type=source_type, url=url, api_key=api_key, verify_tls=verify_tls,
            status=SourceStatus.ACTIVE,
        )
        return await self.update(source_id, changes)

    async def delete(self, source_id: SourceId) -> SourceDeletion:
        """Remove a source with its workflows, their schedules and their tasks."""
        return await self._sources.delete(source_id)

    async def check(self, source_id: SourceId) -> Source:
        """Re-validate a source now; records ``status`` and ``version_info``.

        A failed check marks the source ``inactive`` and then raises the reason.
        """
        source = await self._sources.get(source_id)
        try:
            version_info = await (await self.connect(source)).check()
        except SourceError:
            inactive = SourcePatch(status=SourceStatus.INACTIVE, updated_at=self._clock.now())
            await self._sources.update(source_id, inactive)
            raise
        checked = SourcePatch(
            status=SourceStatus.ACTIVE, version_info=version_info, updated_at=self._clock.now()
        )
        return await self._sources.update(source_id, checked)

    async def connect(self, source: Source) -> WorkflowSource:
        """A client for ``source`` with its API key opened."""
        return self._connector.connect(source, await self._open_key(source.id))

    def connect_sealed(self, source: Source, sealed_key: str | None) -> WorkflowSource:
        """A client for ``source`` whose sealed key was read with it (no further read)."""
        return self._connector.connect(source, self._secrets.open(sealed_key) if sealed_key
                                       else None)

    async def _open_key(self, source_id: SourceId) -> str | None:
        sealed = await self._sources.get_key(source_id)
        return self._secrets.open(sealed) if sealed else None

    async def _validate(self, source: Source, api_key: str | None) -> dict[str, Any]:
        client = self._connector.connect(source, api_key)
        try:
            return await client.check()
        except SourceError as exc:
            raise SourceValidationError(
                f"Source validation failed for {source.url}: {exc.message}",
                errors=[("url", exc.message)],
            ) from exc


def _required_name(name: str) -> str:
    stripped = name.strip()
    if not stripped:
        raise ValidationError(
            "Source name must not be empty", errors=[("name", "must not be empty")]
        )
    return stripped
