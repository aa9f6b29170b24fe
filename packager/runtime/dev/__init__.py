"""The reload control of `pack watch`: only images built for it (BuildOptions(dev=True)) carry
this package; images from `pack build` have no reload endpoint at all.

    control       the listener on 127.0.0.1:$PACK_DEV_CONTROL_PORT (bearer token), its routes
                  POST /v1/dev/patch and GET /v1/dev/status
    patch         a patch validated (paths inside their root, outside the model cache), then
                  written atomically
    error_report  a failed reload described: type, message, file:line of the truss's code,
                  traceback

Started by serving/server.py through the entrypoint (this group imports serving, never the
reverse), and only when both variables are set: without them nothing here is imported.
Kept import-free.
"""
