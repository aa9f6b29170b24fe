"""Code that runs inside the built image.

A dependency leaf: it imports only the standard library, packager.constants and its own modules
(tests/test_architecture.py checks this), because it is copied verbatim into every image where
pack itself is not installed.

Grouped by what runs in the image, each group depending only on the ones after it:

    entrypoint.py   the ENTRYPOINT: starts the prefetch, then serving
    dev/            `pack watch` images only: the reload control, driving serving's reload
    serving/        the HTTP server around model.py, or the docker_server supervisor and proxy
    prefetch/       the weight prefetch process, its pipe to the server, truss-transfer-cli
    transfer/       the downloader (also `pack fetch` and the bake-mode build stage)

and modules shared by several of them (and by the build): manifest (the pinned weights
manifest), image_paths (the image layout), modules (the `python -m` names of the commands
above), timeline (the start-up timeline), cache_pins (the node cache's pins: held by the server,
honoured by the transfer's eviction), pip_names (import -> pip distribution), loading
(load_concurrently, for models to import). external_data is a build stage of its own (config's
external_data fetched into the image).
"""
