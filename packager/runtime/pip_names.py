"""Which pip distribution provides an import: `yaml` -> pyyaml, `cv2` -> opencv-python.

One table for the build (pack's plan maps a truss's imports to Truss's server packages with it)
and for the image (a ModuleNotFoundError at start names the package to add). Standard library
only: the runtime is copied into images where pack is not installed.
"""

from __future__ import annotations

import re

# Imports whose distribution is not the import name with `_` written `-`. Dotted keys are
# namespaces shared by several distributions; the longest matching prefix wins.
PIP_NAMES = {
    "Bio": "biopython",
    "Crypto": "pycryptodome",
    "Cython": "cython",
    "MySQLdb": "mysqlclient",
    "OpenSSL": "pyopenssl",
    "PIL": "pillow",
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "dns": "dnspython",
    "docx": "python-docx",
    "dotenv": "python-dotenv",
    "faiss": "faiss-cpu",
    "fitz": "pymupdf",
    "git": "gitpython",
    "google.cloud.storage": "google-cloud-storage",
    "google.protobuf": "protobuf",
    "grpc": "grpcio",
    "jose": "python-jose",
    "jwt": "pyjwt",
    "llama_cpp": "llama-cpp-python",
    "magic": "python-magic",
    "mpl_toolkits": "matplotlib",
    "multipart": "python-multipart",
    "nacl": "pynacl",
    "opentelemetry": "opentelemetry-api",
    "opentelemetry.exporter.otlp": "opentelemetry-exporter-otlp",
    "opentelemetry.proto": "opentelemetry-proto",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.semconv": "opentelemetry-semantic-conventions",
    "pkg_resources": "setuptools",
    "pptx": "python-pptx",
    "pyximport": "cython",
    "pythonjsonlogger": "python-json-logger",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "slugify": "python-slugify",
    "umap": "umap-learn",
    "websocket": "websocket-client",
    "whisper": "openai-whisper",
    "yaml": "pyyaml",
    "zmq": "pyzmq",
}


def canonical(name: str) -> str:
    """PEP 503 normal form: how pip compares distribution names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_name(module: str) -> str:
    """The distribution that provides `module` (a dotted import name), in canonical form."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        known = PIP_NAMES.get(".".join(parts[:end]))
        if known is not None:
            return known
    return canonical(parts[0])


def is_known(module: str) -> bool:
    """Whether the table (not the fallback spelling) names the distribution of `module`."""
    parts = module.split(".")
    return any(".".join(parts[:end]) in PIP_NAMES for end in range(len(parts), 0, -1))


def requirement_name(line: str) -> str | None:
    """The canonical name of the distribution a requirement line installs (`name[extra]>=1`,
    `name @ url`, `url#egg=name`); None for options, comments, blanks, bare URLs and paths."""
    line = line.split(" #", 1)[0].strip()
    if not line or line.startswith("#"):
        return None
    if "#egg=" in line:
        return canonical(line.split("#egg=", 1)[1].split("&", 1)[0].split("[", 1)[0].strip())
    if line.startswith("-"):
        return None
    if "://" in line.split(" @ ", 1)[0]:
        return None
    name = ""
    for char in line:
        if not (char.isalnum() or char in "-_."):
            break
        name += char
    name = name.strip("-_.")
    return canonical(name) if name else None
