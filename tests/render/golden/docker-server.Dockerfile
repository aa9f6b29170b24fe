# Rendered by pack 0.1.0 for docker-server-echo. Do not edit; run `pack render` again.
FROM python:3.11-slim
USER root
LABEL dev.pack.config-digest="b84f3b4dfa2c66eae047b137813775da98557efe32a8311aff5b812a87bc64c4"
LABEL dev.pack.model-name="docker-server-echo"
LABEL dev.pack.version="0.1.0"
LABEL dev.pack.weights-bytes="0"
LABEL dev.pack.weights-manifest-sha256="f31fee3f86fc05fbd8396f84e423d39fd589c496f58d0db453cca1ee29a32490"
LABEL dev.pack.weights-mode="none"
ENV APP_HOME=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore
# Fail fast on an unusable base image (not Debian-like, or a Python pack's runtime does not run on).
RUN (grep -qE '^(ID|ID_LIKE)=.*debian' /etc/os-release || { echo 'pack: base image python:3.11-slim is not Debian-based' >&2; exit 1; }) && /usr/local/bin/python3 -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 14) else "pack: base image Python %d.%d is outside 3.9-3.14" % sys.version_info[:2])'
WORKDIR /app
COPY data /app/data
RUN --mount=type=bind,source=pack/runtime/packager,target=/opt/pack-runtime \
    cp -R /opt/pack-runtime /app/packager && /usr/local/bin/python3 -m compileall -q /app/packager && \
    printf '#!/bin/sh\nexec %s -m packager.runtime.prefetch.truss_transfer_cli "$@"\n' /usr/local/bin/python3 > /usr/local/bin/truss-transfer-cli && \
    chmod 755 /usr/local/bin/truss-transfer-cli
ENV INFERENCE_SERVER_PORT=8080 PYTHONPATH=/app
EXPOSE 8080
COPY app/ /app/
ENTRYPOINT ["/usr/local/bin/python3", "-m", "packager.runtime.entrypoint"]
