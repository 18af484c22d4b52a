"""``/api/v1/schedules``: when workflows run by themselves."""

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from spark_core.fires import FireOutcome, FireRecord
from spark_core.models import Schedule, ScheduleId, ScheduleStatus, Task, WorkflowId
from spark_core.ports import ScheduleFilter
from spark_core.services.backfill import Backfill, BackfillFields
from spark_core.services.fires import FireService
from spark_core.services.schedules import (
    MAX_PREVIEW,
    ApplyOutcome,
    ScheduleChanges,
    ScheduleFields,
)
from spark_http.auth import SECURITY_SCHEME
from spark_http.dependencies import DEFAULT_LIMIT, Fires, Limit, Offset, Schedules
from spark_http.schemas import (
    NextRuns,
    PageOut,
    ScheduleDeleted,
    ScheduleNote,
    ScheduleOut,
    SparkResponse,
    page_out,
    require_all,
)

_REQUIRED = ("workflow_id", "schedule_type", "schedule_expr")
OUTCOME_HEADER = "X-Spark-Apply-Outcome"
"""What ``PUT /by-key/{key}`` did: ``created``, ``replaced`` or ``unchanged``."""


class ScheduleController(Controller):
    """Create, list, read, change, pause, resume, fire, preview and delete schedules."""

    path = "/api/v1/schedules"
    tags = ["schedules"]
    security = [{SECURITY_SCHEME: []}]

    @post(["", "/"], status_code=HTTP_201_CREATED)
    async def create_schedule(
        self, schedules: Schedules, fires: Fires, data: JSONBody[ScheduleFields]
    ) -> ScheduleOut:
        """Create a schedule. ``schedule_type`` is ``cron`` (5 or 6 fields, ``@daily``…),
        ``interval`` (``30s``, ``5m``, ``1h30m``…) or ``one-time`` (ISO-8601 or ``now``);
        an expression the scheduler cannot execute is a 400 with the reason."""
        return await _counted(fires, await schedules.create(data))

    @get(["", "/"])
    async def list_schedules(
        self,
        *,
        schedules: Schedules,
        fires: Fires,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        workflow_id: FromQuery[str | None] = None,
        status: FromQuery[ScheduleStatus | None] = None,
        key: FromQuery[str | None] = None,
    ) -> PageOut[ScheduleOut]:
        """List schedules, oldest first; filter by ``workflow_id``, ``status`` and ``key``."""
        filters = ScheduleFilter(
            workflow_id=WorkflowId(workflow_id) if workflow_id else None, status=status,
            key=key or None,
        )
        page = await schedules.list(filters, limit=limit, offset=offset)
        counters = await fires.counters([schedule.id for schedule in page.items])
        return page_out(page, lambda schedule: ScheduleOut.of(schedule, counters[schedule.id]))

    @get("/{schedule_id:str}")
    async def get_schedule(
        self, schedules: Schedules, fires: Fires, schedule_id: FromPath[str]
    ) -> ScheduleOut:
        """Read one schedule, with its fire-ledger counters."""
        return await _counted(fires, await schedules.get(ScheduleId(schedule_id)))

    @patch("/{schedule_id:str}")
    async def update_schedule(
        self, schedules: Schedules, fires: Fires, schedule_id: FromPath[str],
        data: JSONBody[ScheduleChanges],
    ) -> ScheduleOut:
        """Change some fields of a schedule. A new expression, type or timezone restarts its
        clock from now; other changes keep its next fire time."""
        return await _counted(fires, await schedules.update(ScheduleId(schedule_id), data))

    @put("/{schedule_id:str}")
    async def replace_schedule(
        self, schedules: Schedules, fires: Fires, schedule_id: FromPath[str],
        data: JSONBody[ScheduleChanges],
    ) -> ScheduleOut:
        """Replace a schedule: ``workflow_id``, ``schedule_type`` and ``schedule_expr`` are
        required, every field is set as at creation (the others back to their defaults) and the
        clock restarts; a body without them is a 400 naming them. To change some fields only,
        use PATCH."""
        require_all(data, _REQUIRED, "schedule")
        given = {
            name: value
            for name, value in msgspec.structs.asdict(data).items()
            if value is not msgspec.UNSET
        }
        fields = msgspec.convert(given, ScheduleFields)
        return await _counted(fires, await schedules.replace(ScheduleId(schedule_id), fields))

    @put("/by-key/{key:str}")
    async def apply_schedule(
        self, schedules: Schedules, fires: Fires, key: FromPath[str],
        data: JSONBody[ScheduleFields],
    ) -> SparkResponse[ScheduleOut]:
        """Create or replace the schedule known by ``key`` (idempotent, for deployment
        scripts): 201 when it is created; 200 when it is replaced in place (same id, clock
        restarted) or left untouched because the body declares what is stored already (its
        status, such as a pause, is then kept). The ``X-Spark-Apply-Outcome`` header says
        which: ``created``, ``replaced`` or ``unchanged``. A ``key`` in the body must match."""
        applied = await schedules.apply(key, data)
        created = applied.outcome is ApplyOutcome.CREATED
        return SparkResponse(
            await _counted(fires, applied.schedule),
            status_code=HTTP_201_CREATED if created else HTTP_200_OK,
            headers={OUTCOME_HEADER: applied.outcome.value},
        )

    @delete("/{schedule_id:str}", status_code=HTTP_200_OK)
    async def delete_schedule(
        self, schedules: Schedules, schedule_id: FromPath[str]
    ) -> ScheduleDeleted:
        """Delete a schedule; the tasks it created stay as history."""
        await schedules.delete(ScheduleId(schedule_id))
        return ScheduleDeleted(deleted=True, id=schedule_id, tasks_kept=True)

    @post("/{schedule_id:str}/enable", status_code=HTTP_200_OK)
    async def enable_schedule(
        self, schedules: Schedules, fires: Fires, schedule_id: FromPath[str],
        data: JSONBody[ScheduleNote | None] = None,
    ) -> ScheduleOut:
        """Resume a paused schedule from now (times missed while paused are not replayed; the
        fire ledger records them as ``missed``). An optional ``{"note": …}`` body becomes the
        schedule's ``note`` (none clears it); the count of failed runs in a row restarts."""
        note = data.note if data is not None else None
        return await _counted(fires, await schedules.enable(ScheduleId(schedule_id), note=note))

    @post("/{schedule_id:str}/disable", status_code=HTTP_200_OK)
    async def disable_schedule(
        self, schedules: Schedules, fires: Fires, schedule_id: FromPath[str],
        data: JSONBody[ScheduleNote | None] = None,
    ) -> ScheduleOut:
        """Pause a schedule. An optional ``{"note": …}`` body says why; it is shown as the
        schedule's ``note`` (a schedule paused by ``pause_after_failures`` gets one saying
        so)."""
        note = data.note if data is not None else None
        return await _counted(fires, await schedules.disable(ScheduleId(schedule_id), note=note))

    @post("/{schedule_id:str}/run", status_code=HTTP_201_CREATED)
    async def run_schedule(self, schedules: Schedules, schedule_id: FromPath[str]) -> Task:
        """Fire the schedule now: queue a task with its input, leaving its timing unchanged."""
        return await schedules.fire_now(ScheduleId(schedule_id))

    @post("/{schedule_id:str}/backfill", status_code=HTTP_201_CREATED)
    async def backfill_schedule(
        self, schedules: Schedules, schedule_id: FromPath[str],
        data: JSONBody[BackfillFields], dry_run: FromQuery[bool] = False,
    ) -> SparkResponse[Backfill]:
        """Run the schedule once per nominal time from ``start`` to ``end`` (both included,
        in the past, at most 1000 times: more is a 400), each recorded ``backfilled``
        in the fire ledger. ``overlap_policy``: ``allow`` (default) one run per time; ``skip``
        or ``buffer_one`` one run for the newest time, the others ``coalesced`` into it. A time
        that already has a run of the schedule is left alone and listed in ``skipped``.
        ``?dry_run=true`` answers the same (200) without creating anything."""
        backfill = await schedules.backfill(ScheduleId(schedule_id), data, dry_run=dry_run)
        return SparkResponse(backfill, status_code=HTTP_200_OK if dry_run else HTTP_201_CREATED)

    @get("/{schedule_id:str}/next")
    async def next_runs(
        self,
        schedules: Schedules,
        schedule_id: FromPath[str],
        count: Annotated[int, QueryParameter(ge=1, le=MAX_PREVIEW)] = 5,
    ) -> NextRuns:
        """The next ``count`` fire times (default 5, at most 100); none when paused."""
        times = await schedules.next_runs(ScheduleId(schedule_id), count)
        return NextRuns(schedule_id=schedule_id, count=len(times), next_runs=times)


    @get("/{schedule_id:str}/fires")
    async def list_fires(
        self,
        *,
        fires: Fires,
        schedule_id: FromPath[str],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        outcome: FromQuery[FireOutcome | None] = None,
    ) -> PageOut[FireRecord]:
        """The fire ledger: one record per nominal time the scheduler considered, newest
        first, with its ``outcome`` (``fired``, ``caught_up``, ``coalesced``, ``missed``,
        ``skipped_overlap``, ``buffered``, ``dropped_buffer_full``, ``error``,
        ``backfilled``), a ``reason``
        in words, the ``task_id`` it created and its ``delay_seconds``; filter by
        ``outcome``."""
        page = await fires.list(ScheduleId(schedule_id), outcome=outcome,
                                limit=limit, offset=offset)
        return page_out(page, _same)


def _same(record: FireRecord) -> FireRecord:
    return record


async def _counted(fires: FireService, schedule: Schedule) -> ScheduleOut:
    """``schedule`` with its fire-ledger counters."""
    counters = await fires.counters([schedule.id])
    return ScheduleOut.of(schedule, counters[schedule.id])
