"""The errors Spark raises; each entrypoint maps them to status or exit codes in one place."""


class SparkError(Exception):
    """Base of every error Spark raises on purpose; its message is safe to show a user."""

    def __init__(self, message: str, *, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class NotFoundError(SparkError):
    """Raised when an id (or remote id, or URL) names nothing that exists."""


class ValidationError(SparkError):
    """Raised when input breaks a domain rule; ``errors`` lists (field, message) pairs."""


class InvalidScheduleError(ValidationError):
    """Raised when a schedule expression, timezone or policy cannot be executed as given."""


class ConflictError(SparkError):
    """Raised when creating something that already exists (a duplicate source URL, say)."""


class AmbiguousIdError(SparkError):
    """Raised when an id prefix starts the ids of several things; the message lists them."""


class InvalidStateError(SparkError):
    """Raised when an operation does not fit the current state (cancelling a finished task)."""


class SourceValidationError(ValidationError):
    """Raised when a new or re-keyed source fails its check against the server."""


class UnknownSourceTypeError(ValidationError):
    """Raised when no adapter is registered for a source type."""


class SourceError(SparkError):
    """Base for failures talking to a remote source; ``transient`` ones are worth retrying."""

    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None, transient: bool | None = None):
        super().__init__(message)
        self.status = status
        if transient is not None:
            self.transient = transient


class SourceUnavailableError(SourceError):
    """Raised when a source cannot be reached, times out, or answers 5xx/429."""

    transient = True


class SourceRejectedError(SourceError):
    """Raised when a source refuses our credentials (401/403)."""


class RemoteNotFoundError(SourceError, NotFoundError):
    """Raised when a source says a flow, agent, team or workflow does not exist."""


class RemoteRunError(SourceError):
    """Raised when a source answers a run with an error that retrying will not fix."""


class SourceProtocolError(SourceError):
    """Raised when a source answers with something that is not what its protocol promises."""


class RunTimeoutError(SourceUnavailableError):
    """Raised when a remote run takes longer than its timeout."""


class TaskCancelledError(SparkError):
    """Raised inside a run when its task was cancelled."""


class StaleWriteError(ConflictError):
    """Raised when a compare-and-set update finds the record changed since it was read."""


class StaleTargetError(ConflictError):
    """Raised when a task made from a run target is stored after the catalogue (workflows and
    sources) has changed since that target was read: read it again."""


class StoreUnavailableError(SparkError):
    """Raised when the database cannot be reached, refuses us, or is newer than this code."""
