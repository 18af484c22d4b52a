"""``WebhookNotifier``: the ``Notifier`` that POSTs failed and recovered runs to webhooks: the
configured one (``SPARK_WEBHOOK_URL``) and the run's workflow's own (``webhook_url``).

The body is the event as JSON; with a secret configured, ``X-Spark-Signature`` carries
``sha256=`` and the hex HMAC-SHA256 of the exact body bytes, so the receiver can check that
Spark sent it. Each event is delivered in a background task, retried with backoff, and given up
with a log line: a broken receiver never touches the run it is about.
"""

import asyncio
import hashlib
import hmac
import logging
import urllib.parse

import aiohttp
import msgspec

from spark_core.models import RunEvent

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Spark-Signature"
EVENT_HEADER = "X-Spark-Event"


def signature(body: bytes, secret: str) -> str:
    """The ``X-Spark-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier:
    """Delivers each event in the background to ``url`` (if any) and to the workflow's own
    webhook (if any): to each, up to ``attempts`` POSTs, waiting ``backoff_seconds`` * 2**n
    between them, each bounded by ``timeout_seconds``. A 2xx answer is a delivery; anything
    else, or no answer, is retried."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str | None = None,
        secret: str | None = None,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._deliveries: set[asyncio.Task[bool]] = set()

    def listens(self, *, workflow_webhook: str | None) -> bool:
        """True when there is a webhook to deliver to: the configured one or the workflow's."""
        return bool(self._url or workflow_webhook)

    def notify(self, event: RunEvent, *, workflow_webhook: str | None = None) -> None:
        """Start delivering ``event`` to each webhook (once to a URL given twice); returns at
        once."""
        for url in dict.fromkeys(u for u in (self._url, workflow_webhook) if u):
            delivery = asyncio.create_task(self.deliver(event, url=url),
                                           name=f"spark-webhook-{event.task_id}")
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def deliver(self, event: RunEvent, *, url: str | None = None) -> bool:
        """POST ``event`` to ``url`` (default: the configured webhook) until the receiver
        accepts it or the attempts run out; True when it was accepted. Never raises (but can
        be cancelled)."""
        target = url or self._url
        if target is None:
            return False
        body = msgspec.json.encode(event)
        headers = {"Content-Type": "application/json", EVENT_HEADER: str(event.event)}
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(body, self._secret)
        for attempt in range(1, self._attempts + 1):
            problem = await self._post(target, body, headers)
            if problem is None:
                return True
            if attempt < self._attempts:
                logger.info("Webhook at %s for task %s failed (attempt %d), retrying: %s",
                            _host(target), event.task_id, attempt, problem)
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
            else:
                logger.warning("Webhook at %s for task %s (%s) given up after %d attempts: %s",
                               _host(target), event.task_id, event.event, attempt, problem)
        return False

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """One POST; ``None`` when accepted, else what went wrong."""
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        # RuntimeError: the session was closed under a delivery (Spark is shutting down)
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            return f"{type(exc).__name__}: {exc}"


def _host(url: str) -> str:
    """Where a webhook is, for a log line: its host, never its path or query (a receiver's
    token may be there)."""
    return urllib.parse.urlsplit(url).hostname or "?"
