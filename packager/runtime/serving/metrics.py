"""/metrics: the start-up timeline and Truss's model_cache_* names in Prometheus text format.

Written by hand (no prometheus_client, which the image does not need): the values are few and
fixed once the prefetch has ended. Then the server's request metrics (request_metrics.py, named
pack_*: Truss's server has none of its own to match), and last the model's own prometheus_client
metrics (model_metrics.py), as Truss's /metrics shows them. model_cache_* appear once the download finished, as Truss
publishes them at first collection; unlike Truss, the hidden time is the real overlap.

Mapping of Truss's b10fs_* (its node cache) onto pack's content-addressed cache (PACK_CACHE_DIR):
enabled / decision_to_use = a cache directory is configured; hot = files linked from the cache;
cold = files downloaded from the source.
"""

from __future__ import annotations

import os

from packager import constants

from ..prefetch.process import Prefetch
from ..timeline import Timeline
from . import model_metrics
from .request_metrics import REQUESTS, Histogram, RequestMetrics

TIMELINE_COMMENT = "pack_startup_timeline"

TIME_BUCKETS = [0.0] + [2.0 ** i for i in range(-3, 11)]
SPEED_BUCKETS = [0.0] + [2.0 ** i for i in range(-1, 12)]
MiB = 1024 * 1024


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str,
               samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.metric(name, "gauge", help_text, [({}, value)])

    def histogram(self, name: str, help_text: str, buckets: list[float], values: list[float]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for bound in buckets:
            count = sum(1 for v in values if v <= bound)
            self.lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {count}')
        self.lines.append(f'{name}_bucket{{le="+Inf"}} {len(values)}')
        self.lines.append(f"{name}_count {len(values)}")
        self.lines.append(f"{name}_sum {_number(sum(values))}")

    def counted_histogram(self, name: str, help_text: str,
                          series: list[tuple[dict[str, str], Histogram]]) -> None:
        """A histogram family counted as it went (request_metrics.Histogram), one per label set."""
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for labels, histogram in series:
            for bound, count in histogram.cumulative():
                le = "+Inf" if bound == float("inf") else _number(bound)
                self.lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {count}")
            self.lines.append(f"{name}_count{_labels(labels)} {histogram.count}")
            self.lines.append(f"{name}_sum{_labels(labels)} {_number(histogram.total)}")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"'.replace("\n", " ") for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render(timeline: Timeline, prefetch: Prefetch | None) -> str:
    w = _Writer()
    # The whole timeline as one JSON comment line (Prometheus ignores it; `pack run` reads it).
    w.lines.append(f"# {TIMELINE_COMMENT} {timeline.log_line()}")
    w.metric("pack_startup_stage_seconds", "gauge",
             "Seconds from process start to the end of each start-up stage",
             [({"stage": stage}, offset) for stage, offset in timeline.stages().items()])
    hidden = timeline.hidden_download_seconds()
    if hidden is not None:
        w.gauge("pack_startup_download_wall_seconds", "Wall time of the weight prefetch",
                timeline.download_wall_seconds() or 0.0)
        w.gauge("pack_startup_download_blocked_seconds",
                "Time the model spent blocked waiting for the weights", timeline.blocked_seconds)
        w.gauge("pack_startup_download_hidden_seconds",
                "Download time hidden behind imports and init (wall - blocked)", hidden)
    if prefetch is not None and prefetch.active and prefetch.done:
        _model_cache(w, timeline, prefetch, hidden or 0.0)
    _requests(w, REQUESTS)
    text = "\n".join(w.lines) + "\n"
    return text + model_metrics.exposition(model_metrics.names_in(text))


def _requests(w: _Writer, requests: RequestMetrics) -> None:
    w.metric("pack_requests_total", "counter", "Requests answered, by route template and status code",
             [({"route": route, "status": str(status)}, count)
              for (route, status), count in sorted(requests.requests.items())])
    w.counted_histogram("pack_request_duration_seconds",
                        "Seconds from a request's head to the end of its response (a stream's last chunk)",
                        [({"route": route}, h) for route, h in sorted(requests.durations.items())])
    w.metric("pack_requests_refused_total", "counter",
             "Requests the HTTP layer answered itself before any route ran (malformed, too slow, too "
             "large, over a limit), by status code",
             [({"status": str(status)}, count) for status, count in sorted(requests.refusals.items())])
    w.gauge("pack_requests_in_flight", "Requests being served now (streams until their end)",
            requests.in_flight)
    w.gauge("pack_predict_queued_requests", "Predict calls waiting for a predict_concurrency permit now",
            requests.queued)
    w.counted_histogram("pack_predict_queue_wait_seconds",
                        "Seconds each predict call waited for a predict_concurrency permit",
                        [({}, requests.queue_wait)])


def _model_cache(w: _Writer, timeline: Timeline, prefetch: Prefetch, hidden: float) -> None:
    files = prefetch.result["files"] if prefetch.result is not None else []
    downloaded = [f for f in files if f["status"] == "downloaded"]
    cached = [f for f in files if f["status"] == "cached"]
    wall = timeline.download_wall_seconds() or 0.0
    bytes_downloaded = sum(f["bytes_downloaded"] for f in downloaded)
    w.gauge("model_cache_manifest_size_bytes", "Total manifest size in bytes", prefetch.total_bytes)
    w.histogram("model_cache_download_time_seconds", "Total download time in seconds",
                TIME_BUCKETS, [wall])
    w.gauge("model_cache_download_speed_mbps", "Aggregated download speed in MB/s",
            bytes_downloaded / 1e6 / wall if wall > 0 else 0.0)
    w.metric("model_cache_files_downloaded_total", "counter", "Total number of files downloaded",
             [({}, len(downloaded))])
    w.metric("model_cache_file_size_bytes_total", "counter",
             "Total size of downloaded files in bytes", [({}, sum(f["size"] for f in downloaded))])
    w.gauge("model_cache_file_download_hidden_time_seconds",
            "Total time hidden from user by starting the download before user code (seconds)", hidden)
    large = [f for f in downloaded if f["size"] > MiB]
    w.histogram("model_cache_file_download_time_seconds", "File download time distribution",
                TIME_BUCKETS, [f["seconds"] for f in large])
    w.histogram("model_cache_file_download_speed_mbps", "File download speed distribution",
                SPEED_BUCKETS, [f["size"] / 1e6 / f["seconds"] for f in large if f["seconds"] > 0])
    cache_on = 1 if os.environ.get(constants.PACK_CACHE_DIR) else 0
    w.gauge("model_cache_b10fs_enabled", "Whether the node cache (PACK_CACHE_DIR) is enabled", cache_on)
    w.gauge("model_cache_b10fs_decision_to_use", "Whether the node cache was used", cache_on)
    w.gauge("model_cache_b10fs_read_speed_mbps", "Node cache read speed in MB/s (not measured)", 0.0)
    w.gauge("model_cache_b10fs_hot_starts_files", "Files linked from the node cache", len(cached))
    w.gauge("model_cache_b10fs_hot_starts_bytes", "Bytes linked from the node cache",
            sum(f["size"] for f in cached))
    w.gauge("model_cache_b10fs_cold_starts_files", "Files downloaded from the source", len(downloaded))
    w.gauge("model_cache_b10fs_cold_starts_bytes", "Bytes downloaded from the source", bytes_downloaded)
    w.metric("model_cache_transfer_success_total", "counter", "Total successful transfers",
             [({"success": str(prefetch.error is None)}, 1)])
