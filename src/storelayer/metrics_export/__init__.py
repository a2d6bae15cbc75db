"""Exporters of storelayer's metrics to where operators look (docs/operations/metrics.md):

- :mod:`storelayer.metrics_export.otel` — OpenTelemetry, following its database client
  semantic conventions (``pip install 'storelayer[otel]'``);
- :mod:`storelayer.metrics_export.prometheus` — a ``prometheus_client`` collector
  (``pip install 'storelayer[prometheus]'``).

Each is imported on its own, so the core never needs either library.
"""

__all__: list[str] = []
