"""The schedules pages: the list with next fire and last outcome; create and edit with a live
preview of the next fire times; pause, resume, run now; and per schedule the fire ledger, with
a timeline of past outcomes and upcoming fires."""

from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from spark_core.errors import InvalidScheduleError, SparkError
from spark_core.fires import FireOutcome
from spark_core.models import (
    CatchupPolicy,
    OverlapPolicy,
    Schedule,
    ScheduleId,
    ScheduleType,
)
from spark_core.ports import ScheduleFilter, WorkflowFilter
from spark_core.services.schedules import ScheduleChanges, ScheduleFields
from spark_http.dependencies import SparkFacade
from spark_http.ui.overview import workflow_names
from spark_http.ui.pages import AnyRequest, form_data, page, redirect, utc_now

PAGE_SIZE = 50
LEDGER_PAGE = 50
TIMELINE_PAST = 40
TIMELINE_NEXT = 10
PREVIEW_COUNT = 5
NOTE_LIMIT = 500

OUTCOME_TONE = {
    FireOutcome.FIRED: "good", FireOutcome.CAUGHT_UP: "good", FireOutcome.BACKFILLED: "good",
    FireOutcome.BUFFERED: "info", FireOutcome.COALESCED: "info",
    FireOutcome.SKIPPED_OVERLAP: "warn", FireOutcome.DROPPED_BUFFER_FULL: "warn",
    FireOutcome.MISSED: "bad", FireOutcome.ERROR: "bad",
}


def _fields(form: dict[str, str]) -> dict[str, Any]:
    """A schedule form's fields, typed as ``ScheduleFields`` reads them (blank = default)."""
    values: dict[str, Any] = {
        "workflow_id": form.get("workflow_id", ""),
        "schedule_type": form.get("schedule_type", "cron"),
        "schedule_expr": form.get("schedule_expr", ""),
        "input_value": form.get("input_value", ""),
        "timezone": form.get("timezone") or "UTC",
        "overlap_policy": form.get("overlap_policy") or OverlapPolicy.SKIP,
        "catchup_policy": form.get("catchup_policy") or CatchupPolicy.LATEST,
    }
    for name, kind in (("max_retries", int), ("timeout", float)):
        if form.get(name):
            try:
                values[name] = kind(form[name])
            except ValueError:
                raise InvalidScheduleError(f"{name} must be a number") from None
    return values


def _convert(values: dict[str, Any], kind: type[Any]) -> Any:
    try:
        return msgspec.convert(values, kind)
    except msgspec.ValidationError as exc:
        raise InvalidScheduleError(f"Invalid schedule: {exc}") from None


class SchedulesController(Controller):
    """List, create, edit, pause, resume, fire and inspect schedules."""

    path = "/schedules"

    async def _form(self, request: AnyRequest, spark: SparkFacade, *,
                    schedule: Schedule | None, values: dict[str, Any],
                    error: str | None = None) -> Template:
        workflows = await spark.workflows.list(WorkflowFilter(), limit=100)
        return page(request, "schedule_form.html", schedule=schedule, values=values, error=error,
                    workflows=[item.workflow for item in workflows.items],
                    types=list(ScheduleType), overlaps=list(OverlapPolicy),
                    catchups=list(CatchupPolicy))

    @get("/")
    async def list_schedules(self, request: AnyRequest, spark: SparkFacade,
                             offset: FromQuery[int] = 0) -> Template:
        """Every schedule with its next fire and the outcome of its last nominal time."""
        listed = await spark.schedules.list(ScheduleFilter(), limit=PAGE_SIZE,
                                            offset=max(offset, 0))
        counters = await spark.fires.counters([item.id for item in listed.items])
        names = await workflow_names(spark, (item.workflow_id for item in listed.items))
        return page(request, "schedules.html", schedules=listed, counters=counters,
                    names=names, tones=OUTCOME_TONE, now=utc_now())

    @get("/preview")
    async def preview(self, spark: SparkFacade, schedule_type: FromQuery[str] = "cron",
                      schedule_expr: FromQuery[str] = "",
                      timezone: FromQuery[str] = "UTC") -> dict[str, Any]:
        """The next fire times of an expression as it is typed, or why it is invalid."""
        try:
            times = spark.schedules.preview(schedule_type, schedule_expr,
                                            timezone=timezone or "UTC", count=PREVIEW_COUNT)
        except InvalidScheduleError as exc:
            return {"times": [], "error": exc.message}
        return {"times": [moment.isoformat() for moment in times], "error": None}

    @get("/new")
    async def new(self, request: AnyRequest, spark: SparkFacade,
                  workflow_id: FromQuery[str] = "") -> Template:
        """The form for a new schedule."""
        return await self._form(request, spark, schedule=None, values={
            "workflow_id": workflow_id, "schedule_type": "cron", "schedule_expr": "*/5 * * * *",
            "timezone": "UTC"})

    @post("/")
    async def create(self, request: AnyRequest, spark: SparkFacade) -> Response[Any]:
        """Create a schedule; an invalid one shows the form again with the reason."""
        form = await form_data(request)
        try:
            schedule = await spark.schedules.create(_convert(_fields(form), ScheduleFields))
        except SparkError as exc:
            return await self._form(request, spark, schedule=None, values=form,
                                    error=exc.message)
        return redirect(request, f"/schedules/{schedule.id}", notice="Schedule created.")

    @get("/{schedule_id:str}")
    async def detail(self, request: AnyRequest, spark: SparkFacade, schedule_id: FromPath[str],
                     offset: FromQuery[int] = 0, outcome: FromQuery[str | None] = None) -> Template:
        """One schedule: its settings, a timeline of past outcomes and upcoming fires, why it
        runs next (or not), and its fire ledger."""
        sid = ScheduleId(schedule_id)
        schedule = await spark.schedules.get(sid)
        chosen = FireOutcome(outcome) if outcome in set(FireOutcome) else None
        ledger = await spark.fires.list(sid, outcome=chosen, limit=LEDGER_PAGE,
                                        offset=max(offset, 0))
        recent = ledger if chosen is None and offset == 0 else await spark.fires.list(
            sid, limit=TIMELINE_PAST)
        upcoming = await spark.schedules.next_runs(sid, TIMELINE_NEXT)
        counters = (await spark.fires.counters([sid]))[sid]
        explanation = await spark.fires.explain(sid)
        names = await workflow_names(spark, [schedule.workflow_id])
        return page(request, "schedule.html", schedule=schedule, ledger=ledger,
                    timeline=list(reversed(recent.items[:TIMELINE_PAST])), upcoming=upcoming,
                    counters=counters, explanation=explanation, names=names,
                    tones=OUTCOME_TONE, outcomes=list(FireOutcome), outcome=chosen,
                    now=utc_now())

    @get("/{schedule_id:str}/edit")
    async def edit(self, request: AnyRequest, spark: SparkFacade,
                   schedule_id: FromPath[str]) -> Template:
        """The form to change a schedule."""
        schedule = await spark.schedules.get(ScheduleId(schedule_id))
        values = {name: getattr(schedule, name) for name in (
            "workflow_id", "schedule_type", "schedule_expr", "input_value", "timezone",
            "overlap_policy", "catchup_policy", "max_retries", "timeout")}
        return await self._form(request, spark, schedule=schedule, values=values)

    @post("/{schedule_id:str}/edit")
    async def update(self, request: AnyRequest, spark: SparkFacade,
                     schedule_id: FromPath[str]) -> Response[Any]:
        """Change a schedule (a new expression, type or timezone restarts its clock)."""
        form = await form_data(request)
        sid = ScheduleId(schedule_id)
        try:
            values = _fields(form)
            if not form.get("timeout"):
                values["timeout"] = None
            await spark.schedules.update(sid, _convert(values, ScheduleChanges))
        except SparkError as exc:
            return await self._form(request, spark, schedule=await spark.schedules.get(sid),
                                    values=form, error=exc.message)
        return redirect(request, f"/schedules/{schedule_id}", notice="Schedule saved.")

    @post("/{schedule_id:str}/{action:str}")
    async def act(self, request: AnyRequest, spark: SparkFacade, schedule_id: FromPath[str],
                  action: FromPath[str]) -> Response[Any]:
        """Pause (with an optional note), resume, run now or delete a schedule."""
        form = await form_data(request)
        sid = ScheduleId(schedule_id)
        note = form.get("note") or None
        back = f"/schedules/{schedule_id}"
        try:
            if action == "pause":
                await spark.schedules.disable(sid, note=note[:NOTE_LIMIT] if note else None)
                message = "Schedule paused."
            elif action == "resume":
                await spark.schedules.enable(sid)
                message = "Schedule resumed from now."
            elif action == "run":
                task = await spark.schedules.fire_now(sid)
                return redirect(request, f"/tasks/{task.id}", notice="Run queued.")
            elif action == "delete":
                await spark.schedules.delete(sid)
                return redirect(request, "/schedules", notice="Schedule deleted.")
            else:
                return redirect(request, back, alert=f"Unknown action {action!r}.")
        except SparkError as exc:
            return redirect(request, back, alert=exc.message)
        return redirect(request, back, notice=message)

