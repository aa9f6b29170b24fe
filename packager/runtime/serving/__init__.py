"""Serving: what answers HTTP in the image once the prefetch has started.

start (the config read, then one of two modes) ->
* the Model-class server: server (lifecycle), http_server (the HTTP/1.1 server; http_parse its
  strict message syntax, http_limits its timeouts and limits), routes (Truss's
  routes), pipeline (pre/predict/postprocess with predict_concurrency), loader (model.py imported
  and loaded in Truss's order), model_spec (the method contract), request_adapter (the request a
  method may take), serialization + pydantic_types (JSON and msgpack bodies), http_errors,
  lazy_data (lazy_data_resolver), secrets (the `secrets` mapping), missing_module (an import
  error explained), metrics (/metrics: request_metrics, model_metrics), observe (metrics, the
  endpoint span and the request id around every request), tracing (OpenTelemetry spans),
  log_format (Truss's JSON log lines), reload (reload in place, driven by `pack watch`'s
  control in packager/runtime/dev);
* docker_server mode: docker_server (the user's start_command supervised) and proxy (Truss's
  routes in front of it).
app_config reads the image's config JSON for both.

Kept import-free: the entrypoint imports this package only after the prefetch process started.
"""
