# mig-labeler image. Not built in this repository's CI (no container engine there); `make wheel-check`
# runs the same install steps: build the wheel, install it with its dependencies, run it.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mig_labeler ./mig_labeler
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
COPY --from=build /wheels /wheels
# The wheels built above, offline (--no-index): pinned by construction.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links=/wheels mig-labeler \
    && rm -rf /wheels \
    && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin mig-labeler
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["mig-labeler"]
CMD ["run"]
