# Rendered by pack 0.1.0 for echo. Do not edit; run `pack render` again.
FROM python:3.11-slim-bookworm
USER root
LABEL dev.pack.config-digest="69025c191a911bcfa9742c5213781b548365110b6fb670b18bcdacaf1d75d276"
LABEL dev.pack.model-name="echo"
LABEL dev.pack.version="0.1.0"
LABEL dev.pack.weights-bytes="0"
LABEL dev.pack.weights-manifest-sha256="f31fee3f86fc05fbd8396f84e423d39fd589c496f58d0db453cca1ee29a32490"
LABEL dev.pack.weights-mode="none"
ENV APP_HOME=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore
# Fail fast on an unusable base image (not Debian-like, or a Python pack's runtime does not run on).
RUN (grep -qE '^(ID|ID_LIKE)=.*debian' /etc/os-release || { echo 'pack: base image python:3.11-slim-bookworm is not Debian-based' >&2; exit 1; }) && python3 -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 14) else "pack: base image Python %d.%d is outside 3.9-3.14" % sys.version_info[:2])'
WORKDIR /app
COPY pack/server-requirements.txt /opt/pack/server-requirements.txt
RUN --mount=type=cache,id=pack-pip,target=/root/.cache/pip --mount=type=cache,id=pack-uv,target=/root/.cache/uv --mount=type=bind,source=pack/installer,target=/opt/pack-installer \
    sh /opt/pack-installer/install -r /opt/pack/server-requirements.txt
# config.yaml environment_variables (the entrypoint still sets them at start; docker run -e wins).
ENV GREETING="hello"
COPY data /app/data
RUN --mount=type=bind,source=pack/runtime/packager,target=/opt/pack-runtime \
    cp -R /opt/pack-runtime /app/packager && python3 -m compileall -q /app/packager && \
    printf '#!/bin/sh\nexec %s -m packager.runtime.prefetch.truss_transfer_cli "$@"\n' python3 > /usr/local/bin/truss-transfer-cli && \
    chmod 755 /usr/local/bin/truss-transfer-cli
COPY model /app/model
ENV INFERENCE_SERVER_PORT=8080 PYTHONPATH=/app
EXPOSE 8080
COPY app/ /app/
ENTRYPOINT ["python3", "-m", "packager.runtime.entrypoint"]
