# Rendered by pack 0.1.0 for minilm-bake. Do not edit; run `pack render` again.
# weights: 1 file(s), 90868376 bytes, fetched and verified by pack's downloader
FROM python:3.11-slim-bookworm AS pack-weights-l1db15b1c9b
USER root
COPY pack/fetcher /opt/pack
COPY pack/weights/pack-weights-l1db15b1c9b.json /opt/pack/weights.json
# Where the sources live (endpoints only; credentials arrive as secret mounts).
ARG HF_ENDPOINT
ARG AWS_ENDPOINT_URL
ARG AWS_ENDPOINT_URL_S3
ARG STORAGE_EMULATOR_HOST
RUN --mount=type=secret,id=hf_access_token,target=/run/secrets/hf_access_token --mount=type=cache,id=pack-weights,target=/var/cache/pack-weights,sharing=shared \
    PYTHONPATH=/opt/pack python3 -m packager.runtime.transfer /opt/pack/weights.json --cache /var/cache/pack-weights --secrets-dir /run/secrets --drop-markers
# weights: 8 file(s), 699421 bytes, fetched and verified by pack's downloader
FROM python:3.11-slim-bookworm AS pack-weights-s00
USER root
COPY pack/fetcher /opt/pack
COPY pack/weights/pack-weights-s00.json /opt/pack/weights.json
# Where the sources live (endpoints only; credentials arrive as secret mounts).
ARG HF_ENDPOINT
ARG AWS_ENDPOINT_URL
ARG AWS_ENDPOINT_URL_S3
ARG STORAGE_EMULATOR_HOST
RUN --mount=type=secret,id=hf_access_token,target=/run/secrets/hf_access_token --mount=type=cache,id=pack-weights,target=/var/cache/pack-weights,sharing=shared \
    PYTHONPATH=/opt/pack python3 -m packager.runtime.transfer /opt/pack/weights.json --cache /var/cache/pack-weights --secrets-dir /run/secrets --drop-markers
FROM python:3.11-slim-bookworm
USER root
LABEL dev.pack.config-digest="bc5f410bb8b18419044adfa26e5f59f64ca033c76235b8db61b1ae6a493eb777"
LABEL dev.pack.model-name="minilm-bake"
LABEL dev.pack.version="0.1.0"
LABEL dev.pack.weights-bytes="91567797"
LABEL dev.pack.weights-manifest-sha256="d08fe382db6e14ad2c41071ff023eb18ef40186f9c64a9a55f76fcdf8c8c34a7"
LABEL dev.pack.weights-mode="bake"
ENV APP_HOME=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore
# Fail fast on an unusable base image (not Debian-like, or a Python pack's runtime does not run on).
RUN (grep -qE '^(ID|ID_LIKE)=.*debian' /etc/os-release || { echo 'pack: base image python:3.11-slim-bookworm is not Debian-based' >&2; exit 1; }) && python3 -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 14) else "pack: base image Python %d.%d is outside 3.9-3.14" % sys.version_info[:2])'
WORKDIR /app
COPY pack/server-requirements.txt /opt/pack/server-requirements.txt
RUN --mount=type=cache,id=pack-pip,target=/root/.cache/pip --mount=type=cache,id=pack-uv,target=/root/.cache/uv --mount=type=bind,source=pack/installer,target=/opt/pack-installer \
    sh /opt/pack-installer/install -r /opt/pack/server-requirements.txt
COPY pack/requirements.txt /opt/pack/requirements.txt
RUN --mount=type=cache,id=pack-pip,target=/root/.cache/pip --mount=type=cache,id=pack-uv,target=/root/.cache/uv --mount=type=bind,source=pack/installer,target=/opt/pack-installer \
    sh /opt/pack-installer/install -r /opt/pack/requirements.txt
COPY --from=pack-weights-l1db15b1c9b /opt/pack-weights/ /
COPY --from=pack-weights-s00 /opt/pack-weights/ /
ADD pack/weights/links.tar /
# config.yaml environment_variables (the entrypoint still sets them at start; docker run -e wins).
ENV OPENBLAS_NUM_THREADS="1"
RUN mkdir -p /app/data
RUN --mount=type=bind,source=pack/runtime/packager,target=/opt/pack-runtime \
    cp -R /opt/pack-runtime /app/packager && python3 -m compileall -q /app/packager && \
    printf '#!/bin/sh\nexec %s -m packager.runtime.prefetch.truss_transfer_cli "$@"\n' python3 > /usr/local/bin/truss-transfer-cli && \
    chmod 755 /usr/local/bin/truss-transfer-cli
COPY packages /packages
COPY model /app/model
ENV INFERENCE_SERVER_PORT=8080 PYTHONPATH=/app
EXPOSE 8080
COPY app/ /app/
ENTRYPOINT ["python3", "-m", "packager.runtime.entrypoint"]
