# mig-labeler image: the runtime dependencies from requirements.lock with every file's hash checked,
# our package copied in and byte-compiled (the root file system is read-only in the pod, so nothing
# can be compiled at start-up), on a distroless Python runtime: no shell, no package manager, user
# 65532. `make image` builds it with buildah (or docker/podman where present) and runs its
# entrypoint inside the built file system (tools/image.py).
#
# Both bases are pinned by digest (the tag in the comment); Renovate or a person bumps them together.
# They must have the same Python minor version (3.11: Debian 12's), since the compiled wheels and
# the .pyc files are made for it. CI, which reaches no registry, passes both as build arguments: a
# Debian 12 root file system with python3, made with mmdebstrap (tools/image.py).
# python:3.11-slim-bookworm
ARG BUILD_BASE=docker.io/library/python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
# gcr.io/distroless/python3-debian12:nonroot
ARG BASE=gcr.io/distroless/python3-debian12:nonroot@sha256:7d1042ce588ab97019fe95c24ffca7bc5a82ccdac572511d5e09bda4435c89c5

FROM ${BUILD_BASE} AS build
# Debian's own pip refuses to install beside the system's packages unless told; --target is apart.
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.lock /tmp/requirements.lock
# Exactly the locked set: hashes required, wheels only (nothing built from source), no resolver.
# Behind a TLS-intercepting proxy, pass its CA bundle as the build secret pip-ca (make image does
# when PIP_CERT is set); it is used for this step only and is not in the image.
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m pip install --require-hashes --only-binary=:all: --no-deps --no-compile --target /app \
       -r /tmp/requirements.lock \
    && rm -rf /app/bin
COPY mig_labeler /app/mig_labeler
# Byte-compiled for a read-only root file system; not the generated API classes and models of
# kubernetes, which mig-labeler never imports (about 50 MB of .pyc).
RUN python3 -m compileall -q -x "kubernetes/client/(api|models)/" /app

FROM ${BASE}
COPY --from=build /app /app
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/bin/python3", "-m", "mig_labeler"]
CMD ["run"]
