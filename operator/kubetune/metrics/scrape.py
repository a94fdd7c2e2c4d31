"""Read trials directly from their /metrics endpoints (local runs, clusters without Prometheus)."""

import asyncio
import logging

import httpx

from kubetune import conventions
from kubetune.metrics.exposition import parse_exposition
from kubetune.metrics.fetch import bounded_get, status_text
from kubetune.metrics.per_trial import readings_by_trial
from kubetune.metrics.types import (
    MalformedAnswer,
    MetricsUnavailable,
    TrialReading,
    TrialTarget,
)

log = logging.getLogger(__name__)


class ScrapeSource:
    """GET http://<address>:<port><path> of each trial and parse the text format."""

    def __init__(
        self,
        path: str = "/metrics",
        timeout: float = 2.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.path = path
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def fetch(
        self, address: str, port: int = conventions.DEFAULT_METRICS_PORT
    ) -> TrialReading:
        """One trial's latest values.

        MetricsUnavailable when the endpoint does not answer (not started yet, or gone);
        MalformedAnswer when it answers with something that is not a metrics page, or a
        page over the size cap. Nothing else: a trial controls what it serves.
        """
        host = f"[{address}]" if ":" in address else address
        url = f"http://{host}:{port}{self.path}"
        answer = await bounded_get(self._client, url, url)
        if answer.status != 200:
            raise MetricsUnavailable(f"{url}: {status_text(answer.status)}")
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedAnswer(f"{url}: not a Prometheus metrics page (not UTF-8)") from None
        try:
            return parse_exposition(text)
        except MalformedAnswer as error:
            raise MalformedAnswer(f"{url}: {error}") from error

    async def collect(
        self, namespace: str, sweep: str, trials: list[TrialTarget]
    ) -> dict[str, TrialReading]:
        """Every reachable trial's values; a trial that does not answer is left out.

        Each trial is its own server, so one that is not up is not a source outage:
        this never raises MetricsUnavailable for a single trial.
        """
        targets = [t for t in trials if t.address and t.port]
        answers = await asyncio.gather(
            *(self.fetch(t.address or "", t.port or 0) for t in targets),
            return_exceptions=True,
        )
        return readings_by_trial(targets, answers, "metrics")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
