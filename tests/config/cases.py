"""The config table: valid and invalid config.yaml files with the exact findings pack reports.

Each case is a complete config.yaml; errors/warnings list (field path, line, message).
`resolved` maps a dotted path of the resolved config to its expected value. The same table
feeds the differential test against Truss (tests/config/test_truss_differential.py), where
`truss_accepts` says what Truss 0.18.30 does with the same file when pack is stricter by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    name: str
    yaml: str
    errors: list[tuple[str, int, str]] = field(default_factory=list)
    warnings: list[tuple[str, int, str]] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    with_model: bool = True
    allow_unknown: bool = False
    # None: Truss agrees with pack's verdict. True/False: Truss's verdict where pack differs
    # on purpose (the reason is in `why`).
    truss_accepts: bool | None = None
    why: str = ""

    @property
    def valid(self) -> bool:
        return not self.errors


VALID = [
    Case("empty file", "", resolved={"python_version": "py313", "resources.cpu": "1",
                                     "resources.memory": "2Gi", "resources.use_gpu": False,
                                     "runtime.predict_concurrency": 1, "model_cache": []}),
    Case("model name only", "model_name: tiny\n", resolved={"model_name": "tiny"}),
    Case("typical model", """\
model_name: whisper
python_version: py311
requirements:
  - numpy==2.1.0
  - safetensors
system_packages: [ffmpeg]
environment_variables:
  LOG_LEVEL: info
secrets:
  hf_access_token: null
resources:
  cpu: "4"
  memory: 16Gi
  accelerator: A10G
runtime:
  predict_concurrency: 4
""", resolved={"resources.accelerator": "A10G", "resources.use_gpu": True,
               "runtime.predict_concurrency": 4, "secrets.hf_access_token": None,
               "system_packages": ["ffmpeg"]}),
    Case("accelerator mapping form", """\
resources:
  accelerator:
    accelerator: H100
    count: 2
""", resolved={"resources.accelerator": "H100:2", "resources.use_gpu": True}),
    Case("accelerator with count", "resources:\n  accelerator: H100:8\n",
         resolved={"resources.accelerator": "H100:8"}),
    Case("millicores and Mi", "resources:\n  cpu: 500m\n  memory: 512Mi\n",
         resolved={"resources.cpu": "500m", "resources.memory": "512Mi"}),
    Case("plain numeric memory", "resources:\n  memory: \"1000000\"\n",
         resolved={"resources.memory": "1000000"}),
    Case("env values coerced like Truss", """\
environment_variables:
  DEBUG: true
  WORKERS: 8
  RATIO: 0.5
""", resolved={"environment_variables.DEBUG": "true", "environment_variables.WORKERS": "8",
               "environment_variables.RATIO": "0.5"}),
    Case("TOKENIZERS_PARALLELISM is no credential", "environment_variables:\n  TOKENIZERS_PARALLELISM: \"false\"\n",
         resolved={"environment_variables.TOKENIZERS_PARALLELISM": "false"}),
    Case("reserved env name warns", "environment_variables:\n  PORT: \"9000\"\n",
         warnings=[("environment_variables.PORT", 2, "`PORT` is reserved by the platform and will be overwritten at "
                                                     "runtime")]),
    Case("credential in env warns", "environment_variables:\n  HF_TOKEN: hf_live_value\n",
         warnings=[("environment_variables.HF_TOKEN", 2, "`HF_TOKEN` looks like a credential; environment_variables "
                                                         "are stored in the image's config.yaml")]),
    Case("literal secret warns and is redacted", "secrets:\n  hf_access_token: hf_abcdefghijklmnop\n",
         warnings=[("secrets.hf_access_token", 2, "secret `hf_access_token` has a value written in config.yaml; pack "
                                                  "never copies it into an image or uses it")],
         resolved={"secrets.hf_access_token": None}),
    Case("chains placeholder secret is not a value", "secrets:\n  api_key: \"***\"\n",
         resolved={"secrets.api_key": "***"}),
    Case("hf_cache alias", """\
hf_cache:
  - repo_id: org/model
    use_volume: false
""", warnings=[("hf_cache", 1, "`hf_cache` is deprecated")],
         resolved={"model_cache.0.repo_id": "org/model", "model_cache.0.kind": "hf"}),
    Case("volume mode repo", """\
model_cache:
  - repo_id: sentence-transformers/all-MiniLM-L6-v2
    revision: main
    use_volume: true
    volume_folder: minilm
    allow_patterns: ["*.json", "*.safetensors"]
    ignore_patterns: ["onnx/*"]
""", resolved={"model_cache.0.volume_folder": "minilm", "model_cache.0.runtime_secret_name": "hf_access_token",
               "model_cache.0.allow_patterns": ["*.json", "*.safetensors"]}),
    Case("bake mode repo without revision", """\
model_cache:
  - repo_id: org/model
    use_volume: false
  - repo_id: org/other
    revision: v1.0
    use_volume: false
""", resolved={"model_cache.1.revision": "v1.0", "model_cache.0.revision": ""}),
    Case("s3 volume repo needs no revision", """\
model_cache:
  - repo_id: s3://bucket/models/llama
    use_volume: true
    volume_folder: llama
    runtime_secret_name: aws_creds
""", resolved={"model_cache.0.kind": "hf", "model_cache.0.runtime_secret_name": "aws_creds"},
         truss_accepts=False,
         why="Truss asks for a revision whenever kind is absent; pack lets the s3:// prefix decide (contract 6.1)"),
    Case("gcs repo with explicit kind", """\
model_cache:
  - repo_id: gs://bucket/weights
    kind: gcs
    use_volume: true
    volume_folder: w
""", resolved={"model_cache.0.kind": "gcs"}),
    Case("docker_server", """\
base_image:
  image: python:3.11-slim
docker_server:
  start_command: python -m http.server 8000
  server_port: 8000
  predict_endpoint: /predict
  readiness_endpoint: /health
  liveness_endpoint: /health
""", with_model=False, resolved={"docker_server.server_port": 8000, "docker_server.no_build": None}),
    Case("docker_server on 8080 warns", """\
docker_server:
  start_command: vllm serve
  server_port: 8080
  predict_endpoint: /v1/chat/completions
  readiness_endpoint: /health
  liveness_endpoint: /health
""", with_model=False, warnings=[("docker_server.server_port", 3, "server_port 8080 is the port pack's route proxy "
                                                                  "uses; the proxy moves to another port and Truss's "
                                                                  "routes (/v1/models/model:predict) are served "
                                                                  "there, while your server keeps 8080")]),
    Case("docker_server no_build without start_command", """\
base_image:
  image: nvcr.io/nim/llama:latest
docker_server:
  no_build: true
  server_port: 8000
  predict_endpoint: /v1/completions
  readiness_endpoint: /v1/health/ready
  liveness_endpoint: /v1/health/live
""", with_model=False, resolved={"docker_server.start_command": None, "docker_server.no_build": True}),
    Case("docker_server beside a model dir warns", """\
docker_server:
  start_command: ./serve
  server_port: 8000
  predict_endpoint: /p
  readiness_endpoint: /r
  liveness_endpoint: /l
""", warnings=[("docker_server", 1, "model/model.py exists but docker_server images do not run it")]),
    Case("base image with auth", """\
base_image:
  image: 123.dkr.ecr.us-east-1.amazonaws.com/base:1
  python_executable_path: /usr/bin/python3
  docker_auth:
    auth_method: aws_iam
    registry: 123.dkr.ecr.us-east-1.amazonaws.com
""", resolved={"base_image.docker_auth.auth_method": "AWS_IAM",
               "base_image.docker_auth.aws_access_key_id_secret_name": "aws_access_key_id"}),
    Case("websocket transport", """\
runtime:
  transport:
    kind: websocket
    ping_interval_seconds: 10
""", resolved={"runtime.transport.kind": "websocket", "runtime.is_websocket_endpoint": True,
               "runtime.transport.ping_interval_seconds": 10.0}),
    Case("legacy is_websocket_endpoint", "runtime:\n  is_websocket_endpoint: true\n",
         resolved={"runtime.transport.kind": "websocket", "runtime.is_websocket_endpoint": True}),
    Case("legacy num_workers 1", "runtime:\n  num_workers: 1\n",
         resolved={"runtime.predict_concurrency": 1}, truss_accepts=False,
         why="truss push rejects the legacy key it still loads; the contract keeps it loading"),
    Case("empty transport means http", "runtime:\n  transport: {}\n",
         resolved={"runtime.transport.kind": "http", "runtime.is_websocket_endpoint": False}),
    Case("use_gpu without accelerator warns", "resources:\n  use_gpu: true\n",
         warnings=[("resources.use_gpu", 2, "use_gpu: true without an accelerator is ignored (as by Truss): the "
                    "image builds FROM a CPU base and `pack run` requests no GPU")],
         resolved={"resources.use_gpu": False, "resources.accelerator": None}),
    Case("model_server TrussServer explicit", "build:\n  model_server: TrussServer\n",
         resolved={"build.model_server": "TrussServer"}),
    Case("expanded use_gpu round trip", """\
resources:
  accelerator: T4
  use_gpu: true
runtime:
  is_websocket_endpoint: false
  transport:
    kind: http
""", resolved={"resources.use_gpu": True}),
    Case("trt_llm published example", """\
model_name: llama-3-8b-trt
resources:
  accelerator: H100
  use_gpu: true
trt_llm:
  build:
    base_model: decoder
    checkpoint_repository:
      repo: meta-llama/Llama-3.1-8B-Instruct
      source: HF
    max_seq_len: 8192
    quantization_type: fp8_kv
    tensor_parallel_count: 1
  runtime:
    enable_chunked_context: true
""", with_model=False, resolved={"trt_llm.build.base_model": "decoder"}),
    Case("platform sections load", """\
bis_llm:
  version: "1.0"
  config: {max_batch: 8}
training_checkpoints:
  artifact_references:
    - training_job_id: job1
      paths: ["ckpt-*"]
bdn:
  mounts:
    - source: bdn:weights/llama-8b:prod
      path: /models/llama
  access:
    - namespace: weights
      grants: [pull]
""", resolved={"training_checkpoints.download_folder": "/tmp/training_checkpoints",
               "bdn.mounts.0.path": "/models/llama"}),
    Case("weights with custom secret", """\
weights:
  - source: hf://meta-llama/Llama-3.1-8B@main
    mount_location: /models/llama
    auth:
      auth_method: custom_secret
      auth_secret_name: hf_access_token
    allow_patterns: ["*.safetensors"]
""", resolved={"weights.0.auth.auth_method": "CUSTOM_SECRET"}),
    Case("external data", """\
external_data:
  - url: https://example.com/model.bin
    local_data_path: weights/model.bin
    name: weights
""", resolved={"external_data.0.backend": "http_public"}),
    Case("build secrets", """\
build:
  secret_to_path_mapping:
    hf_access_token: /root/.cache/token
build_commands:
  - cat /root/.cache/token > /dev/null
""", resolved={"build.secret_to_path_mapping.hf_access_token": "/root/.cache/token"}),
    Case("requirements file", "requirements_file: requirements.txt\n",
         files={"requirements.txt": "numpy\n"}, resolved={"requirements_file": "requirements.txt"}),
    Case("uv.lock with pyproject", "requirements_file: uv.lock\n",
         files={"uv.lock": "version = 1\n", "pyproject.toml": "[project]\nname='x'\n"}),
    Case("unknown key downgraded", "model_name: x\nfuture_feature: true\n", allow_unknown=True,
         warnings=[("future_feature", 2, "unknown key `future_feature` at the top level")]),
    Case("py39 deprecated", "python_version: py39\n",
         warnings=[("python_version", 1, "Python 3.9 is deprecated")]),
    Case("no_cache false is fine", "build:\n  no_cache: false\n"),
    Case("egress restrictions", """\
runtime:
  egress_restrictions:
    ip_allow_list: ["1.1.1.1", "203.0.113.0/24"]
    fqdn_allow_list: ["*.huggingface.co"]
""", resolved={"runtime.egress_restrictions.fqdn_allow_list": ["*.huggingface.co"]}),
    Case("legacy internal keys", """\
model_class_name: Model
model_module_dir: model
bundled_packages_dir: packages
spec_version: "2.0"
live_reload: false
cache_internal: null
""", resolved={"cache_internal": []}),
    Case("yaml anchors and merges", """\
base: &repo
  use_volume: false
model_cache:
  - <<: *repo
    repo_id: org/a
""", allow_unknown=True, warnings=[("base", 1, "unknown key `base` at the top level")],
         resolved={"model_cache.0.use_volume": False}, truss_accepts=False,
         why="Truss's duplicate-checking YAML loader lacks the standard merge-key constructor"),
]

INVALID = [
    Case("yaml syntax error", "model_name: x\nresources:\n  cpu: [1\n  memory: 2Gi\n",
         errors=[("", 4, "YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence)")]),
    Case("duplicate keys", "model_name: a\nresources:\n  cpu: \"1\"\n  cpu: \"2\"\n",
         errors=[("resources.cpu", 4, "duplicate key `cpu` (first defined at line 3)")],
         truss_accepts=True, why="Truss only warns and silently keeps the last value (defect 30)"),
    Case("not a mapping", "- a\n- b\n",
         errors=[("", 1, "config.yaml must be a mapping of keys to values")]),
    Case("top-level typo", "model_name: x\nrequirments:\n  - numpy\n",
         errors=[("requirments", 2, "unknown key `requirments` at the top level")]),
    Case("nested typo", "runtime:\n  predict_concurency: 2\n",
         errors=[("runtime.predict_concurency", 2, "unknown key `predict_concurency` in runtime")]),
    Case("typo inside a list entry", """\
model_cache:
  - repo_id: org/a
    use_volume: false
  - repo_id: org/b
    use_volume: false
    allow_pattern: ["*.json"]
""", errors=[("model_cache[1].allow_pattern", 6, "unknown key `allow_pattern` in model_cache[1]")]),
    Case("requirements and requirements_file", "requirements: [numpy]\nrequirements_file: requirements.txt\n",
         files={"requirements.txt": "numpy\n"},
         errors=[("requirements_file", 2, "only one of `requirements` and `requirements_file` may be set")]),
    Case("model_cache and weights", """\
model_cache:
  - repo_id: org/a
    use_volume: false
weights:
  - source: hf://org/a
    mount_location: /models/a
""", errors=[("weights", 5, "only one of `model_cache` and `weights` may be set")]),
    Case("mixed use_volume", """\
model_cache:
  - repo_id: org/a
    revision: main
    use_volume: true
    volume_folder: a
  - repo_id: org/b
    use_volume: false
""", errors=[("model_cache[1].use_volume", 7, "all model_cache entries must use the same use_volume value "
                                              "(model_cache[0] has true, model_cache[1] has false)")]),
    Case("volume without volume_folder", """\
model_cache:
  - repo_id: org/a
    revision: main
    use_volume: true
""", errors=[("model_cache[0].volume_folder", 2, "volume_folder is required for use_volume: true repos")]),
    Case("volume hf without revision", """\
model_cache:
  - repo_id: org/a
    use_volume: true
    volume_folder: a
""", errors=[("model_cache[0].revision", 2, "revision is required for repo `org/a` with use_volume: true")]),
    Case("one-character revision", """\
model_cache:
  - repo_id: org/a
    revision: x
    use_volume: false
""", errors=[("model_cache[0].revision", 3, "revision must be empty or at least 2 characters")]),
    Case("bad kind", """\
model_cache:
  - repo_id: org/a
    kind: azur
    use_volume: false
""", errors=[("model_cache[0].kind", 3, "`azur` is not allowed here")]),
    Case("kind contradicts prefix", """\
model_cache:
  - repo_id: s3://bucket/a
    kind: gcs
    use_volume: false
""", errors=[("model_cache[0].kind", 3, "kind `gcs` contradicts repo_id `s3://bucket/a`, which is a s3 location")],
         truss_accepts=True, why="Truss silently uses the prefix in bake mode"),
    Case("empty allow_patterns", """\
model_cache:
  - repo_id: org/a
    use_volume: false
    allow_patterns: []
""", errors=[("model_cache[0].allow_patterns", 4, "allow_patterns: [] matches no file")],
         truss_accepts=True, why="Truss accepts a pattern list that can never match"),
    Case("duplicate volume_folder", """\
model_cache:
  - repo_id: org/a
    revision: main
    use_volume: true
    volume_folder: w
  - repo_id: org/b
    revision: main
    use_volume: true
    volume_folder: w
""", errors=[("model_cache[1].volume_folder", 9, "volume_folder `w` is already used by model_cache[0]")],
         truss_accepts=True, why="two repos would write into one folder"),
    Case("volume_folder with a slash", """\
model_cache:
  - repo_id: org/a
    revision: main
    use_volume: true
    volume_folder: ../etc
""", errors=[("model_cache[0].volume_folder", 5, "volume_folder `../etc` must be a single folder name")],
         truss_accepts=True, why="a volume_folder must not escape /app/model_cache"),
    Case("docker_server without start_command", """\
docker_server:
  server_port: 8000
  predict_endpoint: /p
  readiness_endpoint: /r
  liveness_endpoint: /l
""", with_model=False, errors=[("docker_server.start_command", 2, "start_command is required when no_build is not "
                                                                  "true")]),
    Case("docker_server missing server_port", """\
docker_server:
  start_command: ./serve
  predict_endpoint: /p
  readiness_endpoint: /r
  liveness_endpoint: /l
""", with_model=False, errors=[("docker_server.server_port", 2, "required key `server_port` is missing")]),
    Case("run_as_user_id 0", """\
docker_server:
  start_command: ./serve
  server_port: 8000
  predict_endpoint: /p
  readiness_endpoint: /r
  liveness_endpoint: /l
  run_as_user_id: 0
""", with_model=False, errors=[("docker_server.run_as_user_id", 7, "run_as_user_id cannot be 0")]),
    Case("bad cpu", "resources:\n  cpu: abc\n",
         errors=[("resources.cpu", 2, "invalid cpu specification `abc`")]),
    Case("cpu as a number", "resources:\n  cpu: 2\n",
         errors=[("resources.cpu", 2, "expected a string, got int `2`")]),
    Case("bad memory unit", "resources:\n  memory: 2GB\n",
         errors=[("resources.memory", 2, "invalid memory unit `GB` in `2GB`")]),
    Case("bad memory text", "resources:\n  memory: lots\n",
         errors=[("resources.memory", 2, "invalid memory unit `lots` in `lots`")]),
    Case("zero accelerator count", "resources:\n  accelerator: H100:0\n",
         errors=[("resources.accelerator", 2, "invalid count '0': must be a positive integer")]),
    Case("unknown accelerator", "resources:\n  accelerator: X100\n",
         errors=[("resources.accelerator", 2, "unsupported accelerator type `X100`")]),
    Case("non-numeric accelerator count", "resources:\n  accelerator: A10G:two\n",
         errors=[("resources.accelerator", 2, "invalid count 'two': must be a positive integer")]),
    Case("model_server TRT_LLM", "build:\n  model_server: TRT_LLM\n",
         errors=[("build.model_server", 2, "model_server `TRT_LLM` is served by Baseten's TensorRT-LLM engine "
                  "builder; pack builds only the TrussServer model server (model/model.py)")],
         truss_accepts=True, why="Truss hands TRT_LLM trusses to Baseten's engine builder; nothing builds them "
                                 "locally"),
    Case("bad python_version", "python_version: py38\n",
         errors=[("python_version", 1, "python_version `py38` is not supported")]),
    Case("python_version as dotted", "python_version: \"3.11\"\n",
         errors=[("python_version", 1, "python_version `3.11` is not supported")]),
    Case("build no_cache true", "build:\n  no_cache: true\n",
         errors=[("build.no_cache", 2, "no_cache cannot be specified in config.yaml")]),
    Case("bad build secret name", "build:\n  secret_to_path_mapping:\n    \"my secret\": /run/s\n",
         errors=[("build.secret_to_path_mapping.my secret", 3, "secret name `my secret` does not follow Kubernetes "
                                                               "object naming")]),
    Case("relative build secret path", "build:\n  secret_to_path_mapping:\n    token: run/s\n",
         errors=[("build.secret_to_path_mapping.token", 3, "secret `token` must be mounted at an absolute path, got "
                                                           "`run/s`")],
         truss_accepts=True, why="a relative mount target depends on the working directory of each RUN"),
    Case("legacy num_workers above 1", "runtime:\n  num_workers: 2\n",
         errors=[("runtime.num_workers", 2, "only 1 worker per server is allowed (since truss 0.9.49)")]),
    Case("bad server version override", "runtime:\n  truss_server_version_override: abc\n",
         errors=[("runtime.truss_server_version_override", 2, "invalid version string `abc`")]),
    Case("remote ssh with run_as_user_id", """\
runtime:
  remote_ssh:
    enabled: true
docker_server:
  start_command: ./serve
  server_port: 8000
  predict_endpoint: /p
  readiness_endpoint: /r
  liveness_endpoint: /l
  run_as_user_id: 1000
""", with_model=False, errors=[("docker_server.run_as_user_id", 10, "runtime.remote_ssh.enabled is not compatible "
                                                                    "with docker_server.run_as_user_id (SSH requires "
                                                                    "the default 'app' user, uid 60000)")]),
    Case("relative python executable", "base_image:\n  image: x\n  python_executable_path: python3\n",
         errors=[("base_image.python_executable_path", 3, "invalid relative python executable path `python3`")]),
    Case("docker auth missing secret", """\
base_image:
  image: gcr.io/p/i
  docker_auth:
    auth_method: GCP_SERVICE_ACCOUNT_JSON
    registry: gcr.io
""", errors=[("base_image.docker_auth.secret_name", 4, "secret_name must be provided when auth_method is "
                                                       "GCP_SERVICE_ACCOUNT_JSON")]),
    Case("docker auth unknown method", "base_image:\n  image: x\n  docker_auth:\n    auth_method: password\n",
         errors=[("base_image.docker_auth.auth_method", 4, "`PASSWORD` is not allowed here")]),
    Case("weights source without scheme", "weights:\n  - source: org/model\n    mount_location: /m\n",
         errors=[("weights[0].source", 2, "source 'org/model' is missing a URI scheme")]),
    Case("weights unsupported scheme", "weights:\n  - source: ftp://host/m\n    mount_location: /m\n",
         errors=[("weights[0].source", 2, "unsupported source scheme 'ftp://'")]),
    Case("weights relative mount", "weights:\n  - source: hf://org/m\n    mount_location: m\n",
         errors=[("weights[0].mount_location", 3, "mount_location must be an absolute path (start with /), got: m")]),
    Case("weights duplicate mount", """\
weights:
  - source: hf://org/a
    mount_location: /m
  - source: hf://org/b
    mount_location: /m
""", errors=[("weights[1].mount_location", 5, "duplicate mount_location '/m'")]),
    Case("weights revision on s3", "weights:\n  - source: s3://bucket/m@v1\n    mount_location: /m\n",
         errors=[("weights[0].source", 2, "the @ revision syntax is only valid for HuggingFace sources (hf://)")]),
    Case("weights auth missing fields", """\
weights:
  - source: s3://bucket/m
    mount_location: /m
    auth:
      auth_method: AWS_OIDC
      aws_oidc_region: us-east-1
""", errors=[("weights[0].auth.aws_oidc_role_arn", 5, "aws_oidc_role_arn must be provided when auth_method is "
                                                      "AWS_OIDC")]),
    Case("requirements_file missing", "requirements_file: requirements.txt\n",
         errors=[("requirements_file", 1, "requirements_file `requirements.txt` does not exist")],
         truss_accepts=True, why="Truss finds the missing file only when building"),
    Case("uv.lock without pyproject", "requirements_file: uv.lock\n", files={"uv.lock": "version = 1\n"},
         errors=[("requirements_file", 1, "uv.lock needs a pyproject.toml beside it")],
         truss_accepts=True, why="Truss finds it only when building"),
    Case("external package dir missing", "external_package_dirs:\n  - ../shared_pkgs\n",
         errors=[("external_package_dirs[0]", 2, "external package directory `../shared_pkgs` is not a directory")],
         truss_accepts=True, why="Truss finds it only when building"),
    Case("model file missing", "model_name: x\n", with_model=False,
         errors=[("model_class_filename", 1, "model file `model/model.py` does not exist")],
         truss_accepts=True, why="Truss finds it only when the server starts"),
    Case("bad transport kind", "runtime:\n  transport:\n    kind: udp\n",
         errors=[("runtime.transport", 3, "unknown kind `udp`")]),
    Case("model_cache entry without use_volume", "model_cache:\n  - repo_id: org/a\n",
         errors=[("model_cache[0].use_volume", 2, "required key `use_volume` is missing")]),
    Case("model_cache entry without repo_id", "model_cache:\n  - use_volume: false\n",
         errors=[("model_cache[0].repo_id", 2, "required key `repo_id` is missing")]),
    Case("secret value of the wrong type", "secrets:\n  token: [a, b]\n",
         errors=[("secrets.token", 2, "expected a string, got list `['a', 'b']`")]),
    Case("requirements not a list", "requirements: numpy\n",
         errors=[("requirements", 1, "expected a list, got str `'numpy'`")]),
    Case("model_cache not a list", "model_cache:\n  repo_id: org/a\n",
         errors=[("model_cache", 2, "expected a list, got dict `{'repo_id': 'org/a'}`")]),
    Case("every problem at once", """\
model_name: multi
resources:
  cpu: lots
runtime:
  predict_concurrency: many
model_cache:
  - repo_id: org/a
    use_volume: true
""", errors=[
        ("resources.cpu", 3, "invalid cpu specification `lots`"),
        ("runtime.predict_concurrency", 5, "expected an integer, got str `'many'`"),
        ("model_cache[0].revision", 7, "revision is required for repo `org/a` with use_volume: true"),
        ("model_cache[0].volume_folder", 7, "volume_folder is required for use_volume: true repos"),
    ]),
    Case("bdn duplicate mount path", """\
bdn:
  mounts:
    - source: bdn:w/a
      path: /m
    - source: bdn:w/b
      path: /m
""", errors=[("bdn.mounts[1].path", 6, "duplicate volume mount path '/m'")]),
    Case("bdn bad source", "bdn:\n  mounts:\n    - source: w/a\n      path: /m\n",
         errors=[("bdn.mounts[0].source", 3, "invalid BDN volume source 'w/a'")]),
    Case("checkpoints mixing", """\
training_checkpoints:
  artifact_references:
    - training_job_id: j
  loops_checkpoint_ids: [c1]
""", errors=[("training_checkpoints.loops_checkpoint_ids", 4, "cannot mix artifact_references and "
                                                              "loops_checkpoint_ids in one deploy")]),
    Case("external data escaping data dir", """\
external_data:
  - url: https://example.com/x
    local_data_path: /etc/passwd
""", errors=[("external_data[0].local_data_path", 3, "local_data_path `/etc/passwd` must stay inside the data "
                                                     "directory")],
         truss_accepts=True, why="a download must not land outside /app/data"),
    Case("egress bad ip", "runtime:\n  egress_restrictions:\n    ip_allow_list: [\"::1\"]\n",
         errors=[("runtime.egress_restrictions.ip_allow_list[0]", 3,
                  "invalid IP or CIDR '::1': IPv6 is not supported")]),
    Case("trt_llm v1 without build", "trt_llm:\n  runtime: {}\n", with_model=False,
         errors=[("trt_llm.build", 2, "trt_llm.build is required for the v1 inference stack")]),
    Case("empty required string", "model_cache:\n  - repo_id: \"\"\n    use_volume: false\n",
         errors=[("model_cache[0].repo_id", 2, "must not be empty")]),
]

CASES = VALID + INVALID
