"""What the core reports besides its results: metrics through the ``Metrics`` port, and the
``extra`` fields its log lines carry so a structured formatter can print them as keys."""

from spark_core.fires import FireOutcome


class NoMetrics:
    """The ``Metrics`` port that keeps nothing: the default when no adapter is given."""

    def task_attempt_finished(self, *, outcome: str, duration_seconds: float | None) -> None:
        """Forget the attempt."""

    def schedule_decided(self, *, outcome: FireOutcome, delay_seconds: float) -> None:
        """Forget the decision."""

    def worker_busy(self, count: int) -> None:
        """Forget the count."""


def log_fields(**fields: object) -> dict[str, object]:
    """The ``extra=`` of a log line: the given ids (``task_id``, ``workflow_id``,
    ``schedule_id``, ``source_type``…) that are known, as strings."""
    return {name: str(value) for name, value in fields.items() if value is not None}
