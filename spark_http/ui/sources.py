"""The sources page: the servers Spark knows, with their status and version; add, check,
remove."""

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from spark_core.errors import SparkError
from spark_core.models import SourceId
from spark_core.ports import SourceFilter
from spark_http.dependencies import Sources
from spark_http.ui.pages import AnyRequest, form_data, page, redirect

PAGE_SIZE = 100


def version_of(info: dict[str, Any]) -> str:
    """The version a source reported, as one short text."""
    for name in ("version", "main_version", "api_version"):
        if isinstance(info.get(name), str):
            return str(info[name])
    return "—"


class SourcesController(Controller):
    """List, add, check and remove sources."""

    path = "/sources"

    async def _render(self, request: AnyRequest, sources: Sources, *,
                      error: str | None = None,
                      values: dict[str, str] | None = None) -> Template:
        listed = await sources.list(SourceFilter(), limit=PAGE_SIZE)
        return page(request, "sources.html", sources=listed,
                    version_of=version_of, error=error, values=values or {})

    @get("/")
    async def list_sources(self, request: AnyRequest, sources: Sources) -> Template:
        """Every source with its status and version, and the form to add one."""
        return await self._render(request, sources)

    @post("/")
    async def add_source(self, request: AnyRequest, sources: Sources) -> Response[Any]:
        """Add a source, checked against its server first as the API does; a refusal shows
        the form again with the reason."""
        fields = await form_data(request)
        try:
            source = await sources.add(
                name=fields.get("name", ""), source_type=fields.get("source_type", ""),
                url=fields.get("url", ""), api_key=fields.get("api_key") or None,
                verify_tls=fields.get("verify_tls") == "on")
        except SparkError as exc:
            values = {k: v for k, v in fields.items() if k != "api_key"}
            return await self._render(request, sources, error=exc.message, values=values)
        return redirect(request, "/sources", notice=f"Added {source.name} ({source.url}).")

    @post("/{source_id:str}/check")
    async def check_source(self, request: AnyRequest, sources: Sources,
                           source_id: FromPath[str]) -> Response[Any]:
        """Check a source against its server now."""
        try:
            source = await sources.check(SourceId(source_id))
        except SparkError as exc:
            return redirect(request, "/sources", alert=f"Check failed: {exc.message}")
        return redirect(request, "/sources",
                        notice=f"{source.name} answered: {version_of(source.version_info)}.")

    @post("/{source_id:str}/delete")
    async def delete_source(self, request: AnyRequest, sources: Sources,
                            source_id: FromPath[str]) -> Response[Any]:
        """Remove a source with its workflows, their schedules and tasks."""
        deleted = await sources.delete(SourceId(source_id))
        return redirect(request, "/sources", notice=(
            f"Removed the source with {deleted.workflows_deleted} workflow(s), "
            f"{deleted.schedules_deleted} schedule(s) and {deleted.tasks_deleted} task(s)."))
