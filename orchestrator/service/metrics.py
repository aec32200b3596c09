"""Prometheus metrics of the API process.

Two kinds:

* State, read from PostgreSQL and Redis at scrape time by ``StateCollector``, so every API
  replica reports the same numbers (tasks by state, queue depth, workers by state), and the
  task histograms, which workers observe into Redis when runs start and end
  (``adapters/histograms.py``): a scrape costs the same with 100 tasks or 100,000.
* Events of this process, as ordinary counters (hook calls, hook failures and rejections, HTTP
  requests): per replica, summed by Prometheus as counters are.

Metric (type, unit) — labels:

``orchestrator_tasks`` (gauge, tasks) — state: waiting|pending|running|done|error|killed
``orchestrator_unfinished_tasks`` (gauge, tasks waiting, pending or running) — priority:
    high|normal|low (orchestrator.domain.priority)
``orchestrator_stored_bytes`` (gauge, bytes kept by tasks: uploads and results not yet removed
    by a delete or retention) — bucket, project
``orchestrator_objects_removed_total`` (counter, objects removed by this process's deletes and
    retention sweeps) — kind: deleted|inputs|results|unfinished
``orchestrator_queue_depth`` (gauge, jobs waiting in the RQ queue; a queue's priority bands
    are the queues ``<queue>.high`` and ``<queue>.low``) — queue
``orchestrator_workers`` (gauge, workers) — state: up|lost|stopped
``orchestrator_task_duration_seconds`` (histogram, s: a run from its claim to its final state,
    observed by the worker that ended it; runs the reconciler ends after their worker died are
    not in it) — pipeline, status: done|error|killed
``orchestrator_upload_to_start_seconds`` (histogram, s: started_at - queued_at, the wait from
    the last input arriving to a worker starting the run, observed at each start: a task the
    reconciler retried counts once per attempt) — pipeline
``orchestrator_task_create_to_done_seconds`` (histogram, s: create_task to done, observed when
    the run ends done) — pipeline
``orchestrator_scrape_source_up`` (gauge, 1 = read, 0 = failed this scrape) — source:
    postgres|redis
``orchestrator_hook_calls_total`` (counter, hook requests) — hook: tusd hook type
``orchestrator_hook_failures_total`` (counter, hook requests answered with an error) — hook
``orchestrator_hook_rejections_total`` (counter, uploads refused by a hook) — hook
``orchestrator_hook_duration_seconds`` (histogram, s: handling time of one hook request in this
    process, failures included) — hook
``orchestrator_http_requests_total`` (counter, requests) — method, handler (operation id),
    status_code
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from orchestrator.bootstrap import Services
from orchestrator.domain.fleet import WORKER_STATES
from orchestrator.domain.histogram import (
    HOOK_BUCKETS_S,
    TASK_HISTOGRAMS,
    HistogramCounts,
    HistogramSpec,
)
from orchestrator.domain.planning import DEFAULT_QUEUE, GPU_QUEUE
from orchestrator.service.workers import list_workers

log = logging.getLogger(__name__)

PREFIX = "orchestrator"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Process-wide event counters; each app's registry exposes them (registry=None: not global).
HOOK_CALLS = Counter(
    f"{PREFIX}_hook_calls", "tusd hook requests handled, by hook type.", ["hook"], registry=None
)
HOOK_FAILURES = Counter(
    f"{PREFIX}_hook_failures",
    "tusd hook requests that failed (answered 5xx: tusd retries), by hook type.",
    ["hook"],
    registry=None,
)
HOOK_REJECTIONS = Counter(
    f"{PREFIX}_hook_rejections",
    "Uploads a hook refused (bad capability, slot taken, too large...), by hook type.",
    ["hook"],
    registry=None,
)
HOOK_SECONDS = Histogram(
    f"{PREFIX}_hook_duration_seconds",
    "Time to handle one tusd hook request (tusd waits for it), by hook type, in seconds.",
    ["hook"],
    buckets=HOOK_BUCKETS_S,
    registry=None,
)
HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by method, handler (operation id) and status code.",
    ["method", "handler", "status_code"],
    registry=None,
)
OBJECTS_REMOVED = Counter(
    f"{PREFIX}_objects_removed",
    "Objects removed from the object store by deletes and retention, by kind: deleted (a "
    "deleted task's), inputs, results, unfinished (aborted multipart uploads).",
    ["kind"],
    registry=None,
)
EVENT_METRICS = (
    HOOK_CALLS,
    HOOK_FAILURES,
    HOOK_REJECTIONS,
    HOOK_SECONDS,
    HTTP_REQUESTS,
    OBJECTS_REMOVED,
)


@contextmanager
def counting_hook(hook: str) -> Iterator[None]:
    """Count one hook call and time it; count a failure when it raises."""
    HOOK_CALLS.labels(hook).inc()
    try:
        with HOOK_SECONDS.labels(hook).time():
            yield
    except BaseException:
        HOOK_FAILURES.labels(hook).inc()
        raise


def rejected_hook(hook: str) -> None:
    HOOK_REJECTIONS.labels(hook).inc()


def _histogram(spec: HistogramSpec, rows: list[HistogramCounts]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for row in rows:
        family.add_metric(list(row.labels), row.buckets(spec.bounds), row.sum)
    return family


class StateCollector:
    """Reads the shared state at every scrape; a source that fails is reported, not raised."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_scrape_source_up",
            "Whether this scrape could read the source (1) or not (0).",
            labels=["source"],
        )
        for source, read in (("postgres", self._postgres), ("redis", self._redis)):
            try:
                families = list(read())
            except Exception as exc:  # a scrape reports an outage; it does not fail
                log.warning("metrics: cannot read %s: %s", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _postgres(self) -> Iterator[Metric]:
        svc = self._services
        queries = svc.queries
        tasks = GaugeMetricFamily(f"{PREFIX}_tasks", "Tasks by state.", labels=["state"])
        for status, n in queries.count_by_status().items():
            tasks.add_metric([status.value], n)
        yield tasks

        by_band = GaugeMetricFamily(
            f"{PREFIX}_unfinished_tasks",
            "Tasks not finished yet (waiting, pending, running), by priority band.",
            labels=["priority"],
        )
        for band, n in queries.unfinished_by_band().items():
            by_band.add_metric([band.value], n)
        yield by_band

        stored = queries.stored_bytes()
        per_bucket = GaugeMetricFamily(
            f"{PREFIX}_stored_bytes",
            "Bytes the tasks keep in each bucket (uploads, held or declared, and results), by "
            "bucket and project, as recorded at upload and at the end of each run.",
            labels=["bucket", "project"],
        )
        for (kind, project), n in sorted(stored.items()):
            bucket = (
                svc.settings.uploads_bucket if kind == "uploads" else svc.settings.results_bucket
            )
            per_bucket.add_metric([bucket, project], n)
        yield per_bucket

        counts = dict.fromkeys(WORKER_STATES, 0)
        for item in list_workers(svc):
            counts[item.state] += 1
        workers = GaugeMetricFamily(
            f"{PREFIX}_workers",
            "Registered workers by state (lost: silent past WORKER_LOST_AFTER_S).",
            labels=["state"],
        )
        for state, n in counts.items():
            workers.add_metric([state], n)
        yield workers

    def _redis(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        # The two queues the API routes to are listed even before their first job.
        for name, count in self._services.queue.depths((DEFAULT_QUEUE, GPU_QUEUE)).items():
            depth.add_metric([name], count)
        yield depth
        for spec in TASK_HISTOGRAMS:
            yield _histogram(spec, self._services.histograms.read(spec))


def build_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(services))
    for metric in EVENT_METRICS:
        registry.register(metric)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format (``CONTENT_TYPE``)."""
    return generate_latest(registry)
