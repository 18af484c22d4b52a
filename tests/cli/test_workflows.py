"""`spark workflow …` and `spark task …`: the catalogue and runs, in process."""

import json

from tests.cli.conftest import Spark
from tests.servers.hive import FakeHive
from tests.servers.langflow import ECHO_ID, FAIL_ID, PROMPT_ID, FakeLangflow


def test_remote_lists_the_flows_of_active_sources(
    spark: Spark, langflow: FakeLangflow, langflow_source: str
) -> None:
    """`remote` shows the source's flows (components skipped), as a table and as JSON."""
    table = spark("workflow", "remote")
    assert table.exit_code == 0, table.output
    assert "spark-echo" in table.stdout
    assert "spark-component" not in table.stdout
    flows = json.loads(spark("workflow", "remote", "--source", langflow.url, "--json").stdout)
    echo = next(flow for flow in flows if flow["id"] == ECHO_ID)
    assert echo["source_id"] == langflow_source
    assert echo["data"] is None
    full = json.loads(spark("workflow", "remote", "--full", "--json").stdout)
    assert all(flow["data"] for flow in full)


def test_remote_warns_on_stderr_about_a_source_it_could_not_list(
    spark: Spark, hive: FakeHive, langflow_source: str
) -> None:
    """A source answering garbage is named in a warning line; the others are still listed."""
    from tests.cli.conftest import HIVE_KEY

    assert spark("source", "add", "--name", "h", "--type", "hive", "--url", hive.url,
                 "--api-key", HIVE_KEY).exit_code == 0
    hive.garbage = True
    result = spark("workflow", "remote")
    assert result.exit_code == 0, result.output
    assert "spark-echo" in result.stdout
    assert f"Warning: could not list source h ({hive.url})" in result.stderr


def test_sync_list_show_and_remove_a_workflow(spark: Spark, echo_workflow: str) -> None:
    """A synced flow is in the catalogue (by local or remote id) until removed."""
    page = json.loads(spark("workflow", "list", "--json").stdout)
    assert page["total"] == 1
    item = page["items"][0]
    assert item["id"] == echo_workflow
    assert item["latest_run"] == "NEW"
    assert item["task_count"] == 0
    assert "spark-echo" in spark("workflow", "list").stdout
    assert json.loads(spark("workflow", "show", ECHO_ID, "--json").stdout)["id"] == echo_workflow
    assert "remote_flow_id" in spark("workflow", "show", echo_workflow).stdout
    removed = spark("workflow", "remove", echo_workflow, "--yes")
    assert removed.exit_code == 0, removed.output
    assert spark("workflow", "show", echo_workflow).exit_code == 1


def test_syncing_again_updates_in_place(spark: Spark, echo_workflow: str) -> None:
    """Syncing the same remote flow twice keeps one workflow with the same id."""
    again = spark("workflow", "sync", ECHO_ID)
    assert again.stdout.strip() == echo_workflow
    assert json.loads(spark("workflow", "list", "--json").stdout)["total"] == 1


def test_run_prints_the_answer(spark: Spark, langflow: FakeLangflow, echo_workflow: str) -> None:
    """`run` runs the workflow in this process and prints the answer text on stdout."""
    result = spark("workflow", "run", echo_workflow, "--input", "hello spark")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello spark\n"
    assert langflow.runs[0]["json"]["input_value"] == "hello spark"


def test_run_json_prints_the_finished_task(spark: Spark, langflow_source: str) -> None:
    """`run --json` prints the finished task with the API's field names."""
    spark("workflow", "sync", PROMPT_ID)
    result = spark("workflow", "run", PROMPT_ID, "-i", "hi", "--json")
    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)
    assert task["status"] == "completed"
    assert task["output_data"] == "Spark received: hi"
    assert task["tries"] == 1
    assert task["output_raw"]["outputs"]


def test_run_reads_the_input_from_stdin(spark: Spark, echo_workflow: str) -> None:
    """`run --stdin` sends stdin as the input."""
    result = spark("workflow", "run", echo_workflow, "--stdin", input="from a pipe")
    assert result.stdout == "from a pipe\n"


def test_a_failed_run_exits_one_with_the_error(spark: Spark, langflow_source: str) -> None:
    """A run that fails exits 1 with the task's error on stderr; --json still prints the task."""
    spark("workflow", "sync", FAIL_ID)
    result = spark("workflow", "run", FAIL_ID, "--max-retries", "0")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Task ")
    assert "failed" in result.stderr
    as_json = spark("workflow", "run", FAIL_ID, "--max-retries", "0", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "failed"


def test_run_no_wait_only_queues(spark: Spark, langflow: FakeLangflow, echo_workflow: str) -> None:
    """`run --no-wait` prints the pending task's id and runs nothing."""
    result = spark("workflow", "run", echo_workflow, "--no-wait", "-i", "later")
    assert result.exit_code == 0, result.output
    task_id = result.stdout.strip()
    shown = json.loads(spark("task", "show", task_id, "--json").stdout)
    assert shown["status"] == "pending"
    assert langflow.runs == []


def test_run_with_bad_tweaks_is_bad_usage(spark: Spark, echo_workflow: str) -> None:
    """`--tweaks` that is not a JSON object exits 2."""
    assert spark("workflow", "run", echo_workflow, "--tweaks", "[1, 2]").exit_code == 2


def test_run_of_an_unknown_workflow_fails(spark: Spark) -> None:
    """Running a workflow that is not in the catalogue exits 1."""
    result = spark("workflow", "run", "no-such-flow")
    assert result.exit_code == 1
    assert "Workflow no-such-flow not found" in result.stderr


def test_hive_agents_sync_and_run(spark: Spark, hive: FakeHive) -> None:
    """A Hive agent is listed, synced and run like a LangFlow flow."""
    from tests.cli.conftest import HIVE_KEY

    assert spark("source", "add", "--name", "h", "--type", "hive", "--url", hive.url,
                 "--api-key", HIVE_KEY).exit_code == 0
    assert "upper-agent" in spark("workflow", "remote").stdout
    assert spark("workflow", "sync", "upper-agent").exit_code == 0
    result = spark("workflow", "run", "upper-agent", "-i", "quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == "QUIET\n"


def test_task_list_show_retry_cancel_remove(spark: Spark, echo_workflow: str) -> None:
    """Tasks are listed newest first, shown, retried as new tasks, cancelled and removed."""
    spark("workflow", "run", echo_workflow, "-i", "one")
    page = json.loads(spark("task", "list", "--json").stdout)
    assert page["total"] == 1
    first = page["items"][0]
    assert "output_raw" not in first
    assert first["output_data"] == "one"
    assert "completed" in spark("task", "list", "--status", "completed").stdout

    shown = spark("task", "show", first["id"])
    assert "output_data" in shown.stdout
    assert "one" in shown.stdout

    retried = spark("task", "retry", first["id"], "--json")
    assert retried.exit_code == 0, retried.output
    second = json.loads(retried.stdout)
    assert second["id"] != first["id"]
    assert second["output_data"] == "one"

    queued = spark("workflow", "run", echo_workflow, "--no-wait").stdout.strip()
    cancelled = spark("task", "cancel", queued, "--json")
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    again = spark("task", "cancel", queued)
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: ")

    assert spark("task", "remove", first["id"]).exit_code == 0
    assert spark("task", "show", first["id"]).exit_code == 1
    assert json.loads(spark("task", "list", "--json").stdout)["total"] == 2


def test_cli_json_has_the_api_field_names(spark: Spark, echo_workflow: str) -> None:
    """The CLI's JSON for workflows, remote flows and tasks has exactly the API's fields."""
    from spark_http import schemas

    item = json.loads(spark("workflow", "list", "--json").stdout)["items"][0]
    assert set(item) == set(schemas.WorkflowListItem.__struct_fields__)
    remote = json.loads(spark("workflow", "remote", "--json").stdout)[0]
    assert set(remote) == set(schemas.RemoteFlowOut.__struct_fields__)
    spark("workflow", "run", echo_workflow)
    task = json.loads(spark("task", "list", "--json").stdout)["items"][0]
    assert set(task) == set(schemas.TaskListItem.__struct_fields__)
