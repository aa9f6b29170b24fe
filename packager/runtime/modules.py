"""The runtime's command-line modules, by the name `python -m` runs them: the image's ENTRYPOINT,
the bake-mode download stages, truss-transfer-cli, the external_data stage and the prefetch
worker the server spawns. Rendered Dockerfiles and the runtime itself take them from here."""

ENTRYPOINT = "packager.runtime.entrypoint"
TRANSFER = "packager.runtime.transfer"
TRANSFER_CLI = "packager.runtime.prefetch.truss_transfer_cli"
EXTERNAL_DATA = "packager.runtime.external_data"
PREFETCH_WORKER = "packager.runtime.prefetch.worker"
