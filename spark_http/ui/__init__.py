"""The dashboard Spark serves itself at ``/ui``: server-rendered pages (Jinja2 templates), a
small stylesheet and one plain script, all shipped in the package (no CDN, no build step).

``ui_router`` gathers the page controllers under ``/ui`` behind the session guard (see
``session`` and ``pages``), outside the OpenAPI schema; ``template_config`` and
``static_files`` are what ``create_app`` adds to the app.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from spark_core.errors import SparkError
from spark_http.ui.live import TaskFeed
from spark_http.ui.overview import OverviewController
from spark_http.ui.pages import UI_PATH, guard, secure, ui_error
from spark_http.ui.schedules import SchedulesController
from spark_http.ui.session import SessionSigner
from spark_http.ui.signin import SignInController
from spark_http.ui.sources import SourcesController
from spark_http.ui.tasks import TasksController
from spark_http.ui.workflows import WorkflowsController

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PATH = UI_PATH + "/static"

__all__ = ["SessionSigner", "TaskFeed", "static_files", "template_config", "ui_router"]


def ui_router() -> Router:
    """Every dashboard page and action, under ``/ui``, behind the session guard."""
    return Router(
        path=UI_PATH,
        route_handlers=[SignInController, OverviewController, SourcesController,
                        WorkflowsController, SchedulesController, TasksController],
        before_request=guard,
        after_request=secure,
        exception_handlers={SparkError: ui_error},
        include_in_schema=False,
    )


def static_files() -> Router:
    """The stylesheet and script, public (they hold nothing secret), cached for a day; the
    pages name them with the package version so a new release is fetched at once."""
    return create_static_files_router(path=STATIC_PATH, directories=[STATIC],
                                      include_in_schema=False, cache_control=None,
                                      name="ui-static")


def _when(moment: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _ago(moment: datetime | None, now: datetime) -> str:
    """How far ``moment`` is from ``now``, in one unit: "3 min ago", "in 2 h"."""
    if moment is None:
        return ""
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{int(size // length)} {unit}"
            break
    else:
        amount = f"{int(size)} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _configure(engine: JinjaTemplateEngine) -> None:
    filters: dict[str, Any] = {"when": _when, "ago": _ago}
    engine.engine.filters.update(filters)
    engine.engine.globals["duration"] = _duration


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 templates from the package (autoescaped)."""
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine,
                          engine_callback=_configure)
