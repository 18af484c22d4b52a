"""``spark schedule …``: when workflows run by themselves (cron, interval, one-time)."""

from typing import TYPE_CHECKING, Any, TypeVar

import click

from spark_cli.output import Column, note, page_json, print_fields, print_json, print_page
from spark_cli.state import CliState, pass_state
from spark_cli.tasks import execute, wait_option

if TYPE_CHECKING:
    from datetime import datetime

    from spark_core.facade import Spark
    from spark_core.models import Page, Schedule
    from spark_http.presentation import PageOut, ScheduleOut

TYPES = ["cron", "interval", "one-time"]
OVERLAP = ["skip", "allow", "buffer_one"]
CATCHUP = ["latest", "none", "all"]

COLUMNS: list[Column] = [
    ("ID", lambda s: s.id),
    ("WORKFLOW", lambda s: s.workflow_id),
    ("TYPE", lambda s: s.schedule_type),
    ("EXPRESSION", lambda s: s.schedule_expr),
    ("TZ", lambda s: s.timezone),
    ("STATUS", lambda s: s.status),
    ("NEXT RUN", lambda s: s.next_run_at),
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (API field names).")
EXPRESSION_HELP = (
    "cron: 5 fields, 6 with leading seconds, or @hourly/@daily/@weekly/@monthly/@yearly; "
    "interval: 30s, 5m, 2h, 1d, 1w or 1h30m; one-time: an ISO-8601 datetime or now."
)


def timing_options(command: Any) -> Any:
    """The options create and update share (none required here; add makes two of them so)."""
    options = [
        click.option("--input", "input_value", help="The input text each run gets."),
        click.option("--timezone", metavar="IANA", help="Where cron times are read [UTC]."),
        click.option("--overlap", type=click.Choice(OVERLAP),
                     help="While the previous run is unfinished [skip]."),
        click.option("--catchup", type=click.Choice(CATCHUP),
                     help="Fire times missed while down or paused [latest]."),
        click.option("--max-retries", type=click.IntRange(0, 10), help="Per run [3]."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     help="How long one remote attempt may take."),
        click.option("--start-at", metavar="ISO-8601",
                     help="No fire before this time (naive = UTC); intervals count from it."),
        click.option("--end-at", metavar="ISO-8601",
                     help="No fire after this time (naive = UTC); then it is completed."),
        click.option("--max-runs", type=click.IntRange(min=1),
                     help="Completed after this many scheduled runs."),
        click.option("--jitter", metavar="DURATION",
                     help="Delay each run by a random amount up to this (30s, 5m)."),
        click.option("--pause-after-failures", type=click.IntRange(min=1), metavar="N",
                     help="Pause after N failed runs in a row (after their retries)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


S = TypeVar("S")

_FIELD_OF_OPTION = {"overlap": "overlap_policy", "catchup": "catchup_policy"}
"""Options whose names differ from the schedule field they set."""


def given_fields(struct_type: type[S], **options: Any) -> S:
    """The options the user gave (not ``None``) as ``struct_type`` (``ScheduleFields`` for
    add and apply, ``ScheduleChanges`` for update), each under its schedule field's name."""
    import msgspec

    given = {_FIELD_OF_OPTION.get(name, name): value for name, value in options.items()
             if value is not None}
    return msgspec.convert(given, struct_type)


def show_schedule(schedule: "Schedule", *, as_json: bool) -> None:
    """Print one schedule (as the API answers it in JSON, with its fire-ledger counters)."""
    from spark_core.models import Schedule

    if as_json:
        print_json(schedule)
    else:
        print_fields({name: getattr(schedule, name) for name in Schedule.__struct_fields__})


async def counted(spark: "Spark", schedule: "Schedule") -> "ScheduleOut":
    """``schedule`` as the API answers it: with its fire-ledger counters."""
    from spark_http.presentation import ScheduleOut

    counters = await spark.fires.counters([schedule.id])
    return ScheduleOut.of(schedule, counters[schedule.id])


async def counted_page(spark: "Spark", page: "Page[Schedule]") -> "PageOut[ScheduleOut]":
    """A page of schedules as the API lists it: each with its fire-ledger counters."""
    from spark_http.presentation import ScheduleOut, page_out

    counters = await spark.fires.counters([schedule.id for schedule in page.items])
    return page_out(page, lambda schedule: ScheduleOut.of(schedule, counters[schedule.id]))


@click.group()
def schedule() -> None:
    """Make workflows run by themselves: on a cron expression, every interval, or once.

    A running `spark serve` or `spark worker` fires them; these commands only change the store.

    \b
    Example: spark schedule add 8d2e…-… --type cron --expr "0 9 * * 1-5" --timezone Europe/Paris
    """


@schedule.command()
@click.argument("workflow_id")
@click.option("--type", "schedule_type", type=click.Choice(TYPES), required=True,
              help="How the expression is read.")
@click.option("--expr", "schedule_expr", required=True, help=EXPRESSION_HELP)
@timing_options
@click.option("--paused", is_flag=True, help="Create it paused.")
@json_option
@pass_state
def add(
    state: CliState, /, *,
    paused: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Schedule a workflow (by local or remote id) and print the new schedule's id.

    \b
    Example: spark schedule add 8d2e…-… --type interval --expr 1h30m --input "daily digest"
    """
    from spark_core.services.schedules import ScheduleFields

    fields = given_fields(ScheduleFields, status="paused" if paused else "active", **options)

    async def operation(spark: "Spark") -> "Schedule":
        return await counted(spark, await spark.schedules.create(fields))

    created = state.run(operation)
    if as_json:
        print_json(created)
    else:
        click.echo(created.id)
        note(f"Next run: {created.next_run_at or '-'}")


@schedule.command()
@click.argument("key")
@click.argument("workflow_id")
@click.option("--type", "schedule_type", type=click.Choice(TYPES), required=True,
              help="How the expression is read.")
@click.option("--expr", "schedule_expr", required=True, help=EXPRESSION_HELP)
@timing_options
@json_option
@pass_state
def apply(
    state: CliState, /, *,
    key: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Create or replace the schedule known by KEY, for scripts that declare schedules:
    running it twice with the same options leaves one schedule, untouched (a pause
    included); changed options replace it in place (same id, clock restarted). Options left
    out take their defaults. Prints the id and whether it was created, replaced or unchanged.

    \b
    Example: spark schedule apply digest.daily 8d2e…-… --type cron --expr "0 9 * * *"
    """
    from spark_core.services.schedules import AppliedSchedule, ScheduleFields

    fields = given_fields(ScheduleFields, **options)

    async def operation(spark: "Spark") -> "tuple[AppliedSchedule, ScheduleOut]":
        applied = await spark.schedules.apply(key, fields)
        return applied, await counted(spark, applied.schedule)

    applied, answer = state.run(operation)
    if as_json:
        print_json(answer)
    else:
        click.echo(applied.schedule.id)
        note(f"{applied.outcome.capitalize()}; next run: {applied.schedule.next_run_at or '-'}")


@schedule.command("list")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only this workflow's schedules.")
@click.option("--status", type=click.Choice(["active", "paused", "completed"]),
              help="Only schedules in this status.")
@click.option("--key", help="Only the schedule applied under this key.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@json_option
@pass_state
def list_schedules(
    state: CliState, *, workflow_id: str | None, status: str | None, key: str | None,
    limit: int, offset: int, as_json: bool,
) -> None:
    """List schedules, oldest first.

    \b
    Example: spark schedule list --status active --json
    """
    from spark_core.models import ScheduleStatus, WorkflowId
    from spark_core.ports import ScheduleFilter

    filters = ScheduleFilter(
        workflow_id=WorkflowId(workflow_id) if workflow_id else None,
        status=ScheduleStatus(status) if status else None,
        key=key or None,
    )

    async def operation(spark: "Spark") -> Any:
        page = await spark.schedules.list(filters, limit=limit, offset=offset)
        return await counted_page(spark, page) if as_json else page

    page = state.run(operation)
    if as_json:
        print_json(page)
    else:
        print_page(page, COLUMNS, "schedule")


@schedule.command()
@click.argument("schedule_id")
@json_option
@pass_state
def show(state: CliState, *, schedule_id: str, as_json: bool) -> None:
    """Show one schedule.

    \b
    Example: spark schedule show 5a1f…-…
    """
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> "Schedule":
        return await counted(spark, await spark.schedules.get(ScheduleId(schedule_id)))

    show_schedule(state.run(operation), as_json=as_json)


@schedule.command()
@click.argument("schedule_id")
@click.option("--workflow", "workflow_id", metavar="ID", help="Run another workflow.")
@click.option("--type", "schedule_type", type=click.Choice(TYPES), help="A new kind.")
@click.option("--expr", "schedule_expr", help=EXPRESSION_HELP)
@timing_options
@json_option
@pass_state
def update(
    state: CliState, /, *,
    schedule_id: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Change a schedule. A new type, expression or timezone restarts its clock from now;
    other changes keep its next run.

    \b
    Example: spark schedule update 5a1f…-… --expr "30 8 * * *" --timezone America/New_York
    """
    from spark_core.models import ScheduleId
    from spark_core.services.schedules import ScheduleChanges

    changes = given_fields(ScheduleChanges, **options)

    async def operation(spark: "Spark") -> "Schedule":
        return await counted(spark, await spark.schedules.update(ScheduleId(schedule_id),
                                                                 changes))

    updated = state.run(operation)
    if as_json:
        print_json(updated)
    else:
        show_schedule(updated, as_json=False)


@schedule.command()
@click.argument("schedule_id")
@click.option("--note", help="Why; shown on the schedule.")
@json_option
@pass_state
def pause(state: CliState, *, schedule_id: str, note: str | None, as_json: bool) -> None:
    """Pause a schedule: it fires no more until resumed.

    \b
    Example: spark schedule pause 5a1f…-… --note "source migrating until Monday"
    """
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> "Schedule":
        return await counted(spark, await spark.schedules.disable(ScheduleId(schedule_id),
                                                                  note=note))

    paused = state.run(operation)
    if as_json:
        print_json(paused)
    else:
        click.echo(f"Schedule {paused.id} is {paused.status}")


@schedule.command()
@click.argument("schedule_id")
@click.option("--note", help="Why; shown on the schedule (none clears the pause's note).")
@json_option
@pass_state
def resume(state: CliState, *, schedule_id: str, note: str | None, as_json: bool) -> None:
    """Resume a paused schedule from now (times missed while paused are not replayed).

    \b
    Example: spark schedule resume 5a1f…-…
    """
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> "Schedule":
        return await counted(spark, await spark.schedules.enable(ScheduleId(schedule_id),
                                                                 note=note))

    resumed = state.run(operation)
    if as_json:
        print_json(resumed)
    else:
        click.echo(f"Schedule {resumed.id} is {resumed.status}; next run {resumed.next_run_at}")


schedule.add_command(pause, "disable")  # the REST API's words for pause and resume
schedule.add_command(resume, "enable")


@schedule.command("run")
@click.argument("schedule_id")
@wait_option
@json_option
@pass_state
def run_now(state: CliState, *, schedule_id: str, wait: bool, as_json: bool) -> None:
    """Fire a schedule now with its input, without changing its timing. Like `spark workflow
    run`, it waits for the answer (exit status 1 if the run fails) unless --no-wait.

    \b
    Example: spark schedule run 5a1f…-… --json
    """
    from spark_core.models import ScheduleId

    execute(
        state,
        lambda spark: spark.schedules.fire_now(ScheduleId(schedule_id)),
        wait=wait,
        label=f"Running schedule {schedule_id}",
        as_json=as_json,
    )


@schedule.command("next")
@click.argument("schedule_id")
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@json_option
@pass_state
def next_runs(state: CliState, *, schedule_id: str, count: int, as_json: bool) -> None:
    """Show the next fire times (none for a paused or completed schedule).

    \b
    Example: spark schedule next 5a1f…-… --count 10
    """
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> "list[datetime]":
        return await spark.schedules.next_runs(ScheduleId(schedule_id), count)

    times = state.run(operation)
    if as_json:
        print_json({"schedule_id": schedule_id, "count": len(times), "next_runs": times})
    elif not times:
        note("No upcoming runs (the schedule is paused or completed).")
    else:
        for moment in times:
            click.echo(moment.isoformat())


@schedule.command()
@click.argument("schedule_id")
@pass_state
def remove(state: CliState, *, schedule_id: str) -> None:
    """Remove a schedule; the tasks it created stay as history.

    \b
    Example: spark schedule remove 5a1f…-…
    """
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> None:
        await spark.schedules.delete(ScheduleId(schedule_id))

    state.run(operation)
    click.echo(f"Removed schedule {schedule_id}")


FIRE_COLUMNS: list[Column] = [
    ("NOMINAL TIME", lambda r: r.nominal_time),
    ("OUTCOME", lambda r: r.outcome),
    ("DELAY S", lambda r: f"{r.delay_seconds:.1f}"),
    ("TASK", lambda r: r.task_id or "-"),
    ("REASON", lambda r: r.reason),
]


@schedule.command("fires")
@click.argument("schedule_id")
@click.option("--outcome", type=click.Choice(["fired", "caught_up", "coalesced", "missed",
                                             "skipped_overlap", "buffered",
                                             "dropped_buffer_full", "error", "backfilled"]),
              help="Only records with this outcome.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@json_option
@pass_state
def fires(state: CliState, *, schedule_id: str, outcome: str | None, limit: int, offset: int,
          as_json: bool) -> None:
    """Show the fire ledger: what happened at each nominal time, newest first, and why.

    \b
    Example: spark schedule fires 5a1f…-… --outcome missed
    """
    from spark_core.fires import FireOutcome
    from spark_core.models import ScheduleId

    async def operation(spark: "Spark") -> Any:
        return await spark.fires.list(ScheduleId(schedule_id),
                                      outcome=FireOutcome(outcome) if outcome else None,
                                      limit=limit, offset=offset)

    page = state.run(operation)
    if as_json:
        print_json(page_json(page))
    else:
        print_page(page, FIRE_COLUMNS, "fire record")


@schedule.command("explain")
@click.argument("schedule_id")
@click.option("--at", "at", metavar="TIME",
              help="A past time (ISO-8601; naive = UTC): what happened then and why. "
                   "Without it: when the schedule fires next and what could stop it.")
@json_option
@pass_state
def explain(state: CliState, *, schedule_id: str, at: str | None, as_json: bool) -> None:
    """Explain why a schedule did (not) run at a time, or what its next fire depends on.

    \b
    Example: spark schedule explain 5a1f…-… --at 2026-01-05T09:00
    """
    from datetime import UTC, datetime

    from spark_core.models import ScheduleId

    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO-8601 time: {at}", param_hint="--at") from exc
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

    async def operation(spark: "Spark") -> Any:
        return await spark.fires.explain(ScheduleId(schedule_id), when)

    answer = state.run(operation)
    if as_json:
        print_json(answer)
    else:
        click.echo(answer.summary)


@schedule.command("backfill")
@click.argument("schedule_id")
@click.option("--start", required=True, metavar="ISO-8601",
              help="The first nominal time to run (naive = UTC).")
@click.option("--end", required=True, metavar="ISO-8601",
              help="The last nominal time to run (naive = UTC), not after now.")
@click.option("--overlap", type=click.Choice(OVERLAP), default="allow", show_default=True,
              help="allow: one run per time; skip/buffer_one: one run for the newest time.")
@click.option("--dry-run", is_flag=True, help="Show the times without creating anything.")
@json_option
@pass_state
def backfill(state: CliState, *, schedule_id: str, start: str, end: str, overlap: str,
             dry_run: bool, as_json: bool) -> None:
    """Run a schedule once per nominal time of a past range (at most 1000 times), each
    recorded `backfilled` in the fire ledger; times that already ran are skipped.

    \b
    Example: spark schedule backfill 5a1f…-… --start 2026-01-01 --end 2026-01-01T23:59 --dry-run
    """
    from datetime import datetime

    from spark_core.models import OverlapPolicy, ScheduleId
    from spark_core.services.backfill import BackfillFields

    def parsed(text: str, option: str) -> datetime:
        try:
            return datetime.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO-8601 time: {text}", param_hint=option) from exc

    fields = BackfillFields(start=parsed(start, "--start"), end=parsed(end, "--end"),
                            overlap_policy=OverlapPolicy(overlap))

    async def operation(spark: "Spark") -> Any:
        return await spark.schedules.backfill(ScheduleId(schedule_id), fields, dry_run=dry_run)

    done = state.run(operation)
    if as_json:
        print_json(done)
        return
    verb = "would create" if done.dry_run else "created"
    click.echo(f"Backfill {verb} {len(done.runs)} run(s); {len(done.coalesced)} time(s) "
               f"coalesced, {len(done.skipped)} skipped (already run)")
    for run in done.runs:
        click.echo(f"{run.nominal_time.isoformat()}  {run.task_id or '-'}")
