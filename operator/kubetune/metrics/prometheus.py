"""Read trial metrics from Prometheus through its HTTP API."""

import asyncio
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from kubetune.metric_names import reading_key
from kubetune.metrics.answers import Labels, api_data, instant_result, range_result
from kubetune.metrics.fetch import bounded_get
from kubetune.metrics.promql import per_trial, render_template, trial_selector
from kubetune.metrics.types import (
    DONE,
    EVAL_STEP,
    STEP,
    TrialReading,
    TrialTarget,
)
from kubetune.metrics.urls import BaseUrl, parse_base_url
from kubetune.spec import Objective

# Prometheus refuses range queries of more than 11,000 points per series.
_MAX_POINTS = 10_000


class PrometheusSource:
    """Latest values of every trial of a sweep: one instant query per metric.

    metrics: names to read besides step/eval_step/done (e.g. the objectives), as the user
    wrote them (val/loss) or as series; each is read from its series (metric_names.trial_metric)
    and keyed in the reading by reading_key, where TrialReading.value finds it.
    queries: custom PromQL templates by metric name (Objective.query); a template
    naming {trial} runs once per trial, any other must return series labelled `trial`.
    """

    def __init__(
        self,
        url: str | BaseUrl,
        metrics: Sequence[str] = ("eval_loss",),
        queries: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        # Parsed once: the API path is joined onto it, never pasted after the text, so a
        # '#' or '?' in a URL cannot change what is requested (parse_base_url refuses both).
        self.base = url if isinstance(url, BaseUrl) else parse_base_url(url)
        self.url = str(self.base)
        self.metrics = list(dict.fromkeys(reading_key(m) for m in metrics))
        self.queries = {reading_key(k): v for k, v in (queries or {}).items()}
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    @classmethod
    def for_objectives(
        cls,
        url: str | BaseUrl,
        objectives: Sequence[Objective],
        additional: Sequence[str] = (),
        **kwargs: Any,
    ) -> "PrometheusSource":
        """A source reading a sweep's objective metrics, with each Objective.query honoured,
        and its additional metrics (spec.additionalMetrics) from their series."""
        return cls(
            url,
            metrics=[*(o.metric for o in objectives), *additional],
            queries={o.metric: o.query for o in objectives if o.query},
            **kwargs,
        )

    async def query(self, promql: str, time: float | None = None) -> list[tuple[Labels, float]]:
        """An instant query: (labels, value) per series; NaN samples left out."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        data = await self._api("api/v1/query", params)
        return instant_result(data, self._where)

    async def query_range(
        self, promql: str, start: float, end: float, step: float | None = None
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """A range query: (labels, [(timestamp, value), ...]) per series."""
        if step is None:
            step = max(1.0, (end - start) / _MAX_POINTS)
        params = {"query": promql, "start": start, "end": end, "step": step}
        data = await self._api("api/v1/query_range", params)
        return range_result(data, self._where)

    async def collect(
        self, namespace: str, sweep: str, trials: list[TrialTarget]
    ) -> dict[str, TrialReading]:
        """Latest values of the given trials; trials with no series yet are left out."""
        wanted = {t.name for t in trials}
        names = [*self.metrics, STEP, EVAL_STEP, DONE]
        per_metric = await asyncio.gather(
            *(self._metric_by_trial(name, namespace, sweep, sorted(wanted)) for name in names)
        )
        values: dict[str, dict[str, float]] = {}
        for name, by_trial in zip(names, per_metric, strict=True):
            for trial, value in by_trial.items():
                if trial in wanted:
                    values.setdefault(trial, {})[name] = value
        return {trial: TrialReading(values=v) for trial, v in values.items()}

    async def eval_history(
        self,
        namespace: str,
        sweep: str,
        trial: str,
        metric: str,
        start: float,
        end: float,
        step: float | None = None,
    ) -> list[tuple[int, float]]:
        """The (training step, value) evaluations of one trial between start and end.

        Pairs the metric with kubetune_trial_eval_step sampled at the same instants
        (falling back to kubetune_trial_step for trainers without it); one point per step.
        """
        metric = reading_key(metric)
        template = self.queries.get(metric)
        promql = (
            render_template(template, namespace, sweep, trial)
            if template
            else trial_selector(metric, namespace, sweep, trial)
        )
        values = _first_series(await self.query_range(promql, start, end, step))
        steps: dict[float, float] = {}
        for step_name in (EVAL_STEP, STEP):
            selector = trial_selector(step_name, namespace, sweep, trial)
            steps = dict(_first_series(await self.query_range(selector, start, end, step)))
            if steps:
                break
        seen: dict[int, Counter[float]] = {}
        for ts, value in values:
            at = steps.get(ts)
            if at is None or math.isnan(value) or math.isnan(at):
                continue
            seen.setdefault(int(at), Counter())[value] += 1
        # A scrape may land between the trainer's two updates and pair a step with the
        # neighbouring value; the settled pair is the one seen most often.
        return [(at, counts.most_common(1)[0][0]) for at, counts in sorted(seen.items())]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _metric_by_trial(
        self, metric: str, namespace: str, sweep: str, trials: list[str]
    ) -> dict[str, float]:
        template = self.queries.get(metric)
        if template and per_trial(template):
            answers = await asyncio.gather(
                *(self.query(render_template(template, namespace, sweep, t)) for t in trials)
            )
            return {t: series[0][1] for t, series in zip(trials, answers, strict=True) if series}
        promql = (
            render_template(template, namespace, sweep)
            if template
            else trial_selector(metric, namespace, sweep)
        )
        found: dict[str, float] = {}
        for labels, value in await self.query(promql):
            trial = _trial_of(labels, namespace, pinned=template is None)
            if trial is not None:
                found[trial] = value
        return found

    @property
    def _where(self) -> str:
        return f"Prometheus at {self.url}"

    async def _api(self, endpoint: str, params: Mapping[str, Any]) -> dict[str, Any]:
        answer = await bounded_get(self._client, self.base.api(endpoint), self._where, params)
        return api_data(answer, self._where, query=params.get("query"))


def _trial_of(labels: Labels, namespace: str, *, pinned: bool) -> str | None:
    """The trial a series belongs to, or None when it cannot be the trial's own series.

    The scrape jobs set namespace, trial and pod from the pod's own metadata (never from the
    labels it exposes), so only the trial's pod, named after the trial, in the sweep's
    namespace, yields pod == trial there. pinned: a built-in selector, whose series always
    carry both labels; a custom template's may have aggregated them away.
    """
    trial = labels.get("trial")
    if trial is None:
        return None
    if labels.get("namespace", None if pinned else namespace) != namespace:
        return None
    if labels.get("pod", None if pinned else trial) != trial:
        return None
    return trial


def _first_series(
    result: list[tuple[Labels, list[tuple[float, float]]]],
) -> list[tuple[float, float]]:
    return result[0][1] if result else []
