"""The weight prefetch: a separate OS process that fetches the volume-mode manifest at start.

process (the server's side: spawn, read events, wait, stop) -> worker (the process itself,
`python -m packager.runtime.prefetch.worker`) over events (the JSON lines on the pipe between
them); state (the lock and state file every fetcher in the container shares) and
truss_transfer_cli (`truss-transfer-cli`, the same prefetch for a docker_server start_command).

Kept import-free: the worker's start-up time is on every cold start's critical path.
"""
