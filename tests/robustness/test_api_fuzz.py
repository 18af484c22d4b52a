"""Property-based fuzzing of the whole OpenAPI document with schemathesis.

Every operation of ``/api/v1/openapi.json`` is called on a real `spark serve` with generated
inputs, valid and invalid. Half the cases that name an id get the id of a real source,
workflow, schedule or task (seeded against a loopback LangFlow), so generated bodies and
queries reach the logic behind the 404 of an unknown id. Checks: no 5xx, and every answer
conforms to the schema the document declares.
"""

from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.processes import AUTH, ServerThread, SparkProcess
from tests.robustness.conftest import report
from tests.servers import LANGFLOW_KEY, FakeLangflow
from tests.servers.langflow import ECHO_ID

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]
# The id parameters of the document, and which seeded object each names.
ID_PARAMETERS = {"source_id": "source", "workflow_id": "workflow", "schedule_id": "schedule",
                 "task_id": "task", "flow_id": "flow"}


class Fuzzing:
    """The server under fuzz, the ids it holds, and the figures of the run."""

    def __init__(self, server: SparkProcess, ids: dict[str, str]) -> None:
        self.server = server
        self.ids = ids
        self.session = requests.Session()
        self.requests = 0
        self.server_errors = 0
        self.statuses: dict[int, int] = {}
        self.operations = 0


@pytest.fixture(scope="module")
def fuzzing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzing]:
    """One server for every operation, seeded with one object of each kind."""
    langflow = FakeLangflow(api_key=LANGFLOW_KEY)
    with ServerThread(langflow):
        server = SparkProcess(tmp_path_factory.mktemp("fuzz"), "serve.log",
                              {"SPARK_HTTP_TIMEOUT": "10"})
        try:
            source = server.call("POST", "/api/v1/sources", {
                "name": "lf", "source_type": "langflow", "url": langflow.url,
                "api_key": LANGFLOW_KEY}, expect=201)
            workflow = server.call("POST", f"/api/v1/workflows/sync/{ECHO_ID}",
                                   params={"source_id": source["id"]})
            schedule = server.call("POST", "/api/v1/schedules", {
                "workflow_id": workflow["id"], "schedule_type": "cron",
                "schedule_expr": "0 9 * * *"}, expect=201)
            task = server.call("POST", "/api/v1/tasks", {"workflow_id": workflow["id"]},
                               expect=201)
            ids = {"source": source["id"], "workflow": workflow["id"],
                   "schedule": schedule["id"], "task": task["id"], "flow": ECHO_ID}
            state = Fuzzing(server, ids)
            yield state
            report("api-fuzz", operations=state.operations, requests=state.requests,
                   server_errors=state.server_errors,
                   statuses=",".join(f"{code}:{count}"
                                     for code, count in sorted(state.statuses.items())))
            assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            server.stop()


def _fuzz(operation: Any, mode: GenerationMode, fuzzing: Fuzzing) -> None:
    """Call ``operation`` with up to ``MAX_EXAMPLES`` generated cases of ``mode``."""

    @given(case=operation.as_strategy(generation_mode=mode), use_real_ids=st.booleans())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def check(case: Any, use_real_ids: bool) -> None:
        if use_real_ids and case.path_parameters and case.method.upper() != "DELETE":
            for name in case.path_parameters:
                if name in ID_PARAMETERS:
                    case.path_parameters[name] = fuzzing.ids[ID_PARAMETERS[name]]
        # Generated security headers would make most cases a 401 (tests/http covers auth).
        case.headers = {**(case.headers or {}), **AUTH}
        response = case.call(base_url=fuzzing.server.base, session=fuzzing.session,
                             headers=AUTH, timeout=30)
        fuzzing.requests += 1
        code = response.status_code
        fuzzing.statuses[code] = fuzzing.statuses.get(code, 0) + 1
        if code >= 500:
            fuzzing.server_errors += 1
        case.validate_response(response, checks=CHECKS)

    check()


def test_no_operation_answers_5xx_or_off_schema(fuzzing: Fuzzing) -> None:
    """Every operation, fed generated valid and invalid inputs, answers without a 5xx and
    with a status and body its OpenAPI document declares."""
    document = schemathesis.openapi.from_url(f"{fuzzing.server.base}/api/v1/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in document.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, fuzzing)
            except Unsatisfiable:
                pass  # no invalid input exists for an operation that takes none
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
                failures.append(f"{operation.label} [{mode}]: {exc}")
    fuzzing.operations = operations
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


def test_a_page_offset_beyond_sqlite_integers_is_an_empty_page(fuzzing: Fuzzing) -> None:
    """An offset larger than SQLite's integers (a case the fuzz once found as a 500) answers
    an empty page."""
    page = fuzzing.server.call("GET", "/api/v1/tasks", params={"offset": str(10**25)})
    assert page["items"] == []
    assert page["has_more"] is False


def test_the_fuzzed_server_still_answers(fuzzing: Fuzzing) -> None:
    """After the fuzzing, the server is healthy and its seeded objects still read back."""
    assert fuzzing.server.call("GET", "/health")["status"] == "healthy"
    fuzzing.server.call("GET", f"/api/v1/workflows/{fuzzing.ids['workflow']}")
