"""Every environment variable name pack reads or sets, and the fixed paths of the image layout.

Standard library only: it is copied into images beside packager.runtime.
"""

# --- variables pack reads on the build host -------------------------------------------------
PACK_CA_BUNDLE = "PACK_CA_BUNDLE"  # extra CA bundle trusted by pip/apt inside builds
PACK_SECRETS_DIR = "PACK_SECRETS_DIR"  # local secrets dir (one file per secret name)
HF_ENDPOINT = "HF_ENDPOINT"
HF_TOKEN = "HF_TOKEN"
HUGGING_FACE_HUB_TOKEN = "HUGGING_FACE_HUB_TOKEN"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_ENDPOINT_URL_S3 = "AWS_ENDPOINT_URL_S3"
STORAGE_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
SSL_CERT_FILE = "SSL_CERT_FILE"
SSL_CERT_DIR = "SSL_CERT_DIR"

# --- variables Truss defines and pack honours inside images ---------------------------------
TRUSS_SECRET_PREFIX = "TRUSS_SECRET_"
# The value Chains writes for a declared secret; counts as unset wherever a secret is read.
SECRET_PLACEHOLDER = "***"
INFERENCE_SERVER_PORT = "INFERENCE_SERVER_PORT"
NUM_LOAD_RETRIES_TRUSS = "NUM_LOAD_RETRIES_TRUSS"
APP_HOME = "APP_HOME"
# Set to anything: the server logs plain text instead of one JSON object per line (Truss's rule).
DISABLE_JSON_LOGGING = "DISABLE_JSON_LOGGING"

# --- variables pack sets inside images ------------------------------------------------------
PACK_MANIFEST = "PACK_MANIFEST"  # path of the weights manifest the runtime prefetches
PACK_CACHE_DIR = "PACK_CACHE_DIR"  # content-addressed blob cache shared by containers on a node
PACK_TRANSFER_WORKERS = "PACK_TRANSFER_WORKERS"
PACK_TRANSFER_CHUNK_BYTES = "PACK_TRANSFER_CHUNK_BYTES"  # size of one ranged request
PACK_TRANSFER_DIRECT_IO = "PACK_TRANSFER_DIRECT_IO"  # 1: write weights with O_DIRECT
# Nice increment of the in-image prefetch's download threads while the model imports (0 = off).
PACK_PREFETCH_NICE = "PACK_PREFETCH_NICE"
PACK_TRANSFER_FILES_IN_FLIGHT = "PACK_TRANSFER_FILES_IN_FLIGHT"  # files downloaded side by side
PACK_CACHE_MAX_BYTES = "PACK_CACHE_MAX_BYTES"  # LRU eviction cap of PACK_CACHE_DIR

# --- variables the in-image runtime reads besides the above ---------------------------------
# Each one only relocates a fixed path or tunes a limit, so tests and local runs can start the
# runtime outside an image (PACK_MANIFEST and PACK_SECRETS_DIR relocate too; INFERENCE_SERVER_PORT
# picks the port).
PACK_APP_DIR = "PACK_APP_DIR"  # replaces /app (config, model/, data/, model_cache/, .pack/)
PACK_PACKAGES_DIR = "PACK_PACKAGES_DIR"  # replaces /packages
PACK_STATE_DIR = "PACK_STATE_DIR"  # prefetch state, lock and stats files (default /tmp)
PACK_DYNAMIC_CONFIG_DIR = "PACK_DYNAMIC_CONFIG_DIR"  # replaces /etc/b10_dynamic_config
PACK_CHAINS_DYNAMIC_CONFIG = "PACK_CHAINS_DYNAMIC_CONFIG"  # chainlet name -> URL, set by `pack chains run`
PACK_SHUTDOWN_TIMEOUT = "PACK_SHUTDOWN_TIMEOUT"  # seconds SIGTERM waits for in-flight requests
# The in-image HTTP server's limits (defaults in packager/runtime/serving/http_limits.py):
PACK_HTTP_HEAD_TIMEOUT = "PACK_HTTP_HEAD_TIMEOUT"  # seconds to receive a whole request head
PACK_HTTP_BODY_TIMEOUT = "PACK_HTTP_BODY_TIMEOUT"  # seconds a request body may go without a byte
PACK_HTTP_KEEPALIVE_TIMEOUT = "PACK_HTTP_KEEPALIVE_TIMEOUT"  # seconds an idle connection stays open
PACK_HTTP_SEND_TIMEOUT = "PACK_HTTP_SEND_TIMEOUT"  # seconds a response's client may take none of it
PACK_HTTP_MAX_CONNECTIONS = "PACK_HTTP_MAX_CONNECTIONS"  # open connections (also bounded by RLIMIT_NOFILE)
PACK_HTTP_MAX_BODY_BYTES = "PACK_HTTP_MAX_BODY_BYTES"  # one request body (larger: 413)
PACK_HTTP_BODY_MEMORY_BYTES = "PACK_HTTP_BODY_MEMORY_BYTES"  # all request bodies in memory together (503)
PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT = "PACK_HTTP_SHUTDOWN_UPLOAD_TIMEOUT"  # seconds uploads still reading get at SIGTERM
PACK_WS_MAX_SESSIONS = "PACK_WS_MAX_SESSIONS"  # open WebSocket sessions before new upgrades get 503
PACK_WS_MAX_MESSAGE_BYTES = "PACK_WS_MAX_MESSAGE_BYTES"  # largest WebSocket message (Truss: 100 MiB)
PACK_STREAM_BUFFER_BYTES = "PACK_STREAM_BUFFER_BYTES"  # how far a streamed generator runs ahead of its client
PACK_STREAM_STALL_TIMEOUT = "PACK_STREAM_STALL_TIMEOUT"  # seconds a stream's client may read nothing
# Set by `pack watch` only, on images built for it (their runtime has packager/runtime/dev):
# the loopback port of the reload control, and the per-run token every control request carries.
PACK_DEV_CONTROL_PORT = "PACK_DEV_CONTROL_PORT"
PACK_DEV_CONTROL_TOKEN = "PACK_DEV_CONTROL_TOKEN"

# --- image layout ---------------------------------------------------------------------------
APP_DIR = "/app"
SECRETS_DIR = "/secrets"
MODEL_CACHE_DIR = "/app/model_cache"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
DEFAULT_SERVER_PORT = 8080
# Truss's routes on that port (a docker_server truss: on its plan's proxy_port, in front of its server).
LIVENESS_PATH = "/"  # 200 from the start, also while the weights download and the model loads
READINESS_PATH = "/v1/models/model"  # 503 until the model is loaded
PREDICT_PATH = "/v1/models/model:predict"
WEBSOCKET_PATH = "/v1/websocket"  # a websocket model's (Upgrade requests only)
PACKAGES_DIR = "/packages"
DYNAMIC_CONFIG_DIR = "/etc/b10_dynamic_config"
RUNTIME_STATE_DIR = "/tmp"
# The expanded config as JSON beside /app/config.yaml, so the runtime needs no YAML parser
# (docker_server images get no server requirements at all).
IMAGE_CONFIG_JSON = "/app/.pack/config.json"

# The line a bake-mode download step logs when it is done ("<mark> {json}"): the build reads what
# its weight steps fetched from the build output (a step taken from the cache logs nothing).
TRANSFER_RESULT_MARK = "pack-transfer-result"

# --- labels pack puts on what it creates in the engine ---------------------------------------
# Images (at build), containers and the weight-cache volumes (at run): which truss they belong to
# (its config file, absolute: the key `pack logs/stop/cleanup DIR` look them up by) and its model.
LABEL_TRUSS = "dev.pack.truss"
LABEL_MODEL_NAME = "dev.pack.model-name"
