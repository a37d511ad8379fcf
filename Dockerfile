# One image for every container of the deployment: the gRPC code server, the webserver, the daemon and
# the run tasks the EcsRunLauncher starts (deploy/stack/ says which command each runs).
#
#   docker build -t jobs-orchestration:$(git rev-parse --short HEAD) .
#
# The build stage makes a virtual environment from deploy/requirements.lock (exact pins, the versions
# the test suite runs on) plus the project's own wheel; the runtime stage copies only that environment,
# so no compiler, pip cache or source tree reaches it.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH

# The tools that build the project's wheel, pinned like everything else.
RUN pip install pip==26.3 setuptools==80.9.0 wheel==0.45.1

WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes, not on every code change.
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip install --no-deps --only-binary=:all: -r deploy/requirements.lock

COPY pyproject.toml README.md ./
COPY jobs_orchestration ./jobs_orchestration
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && pip install --no-deps /wheels/*.whl \
    && pip check \
    && pip uninstall --yes setuptools wheel


FROM python:3.11.14-slim-bookworm AS runtime

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/home

RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --no-create-home \
       --shell /usr/sbin/nologin dagster \
    && mkdir -p /opt/dagster/home \
    && chown dagster:dagster /opt/dagster/home

WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY deploy/ /app/deploy/
# The instance configuration every process reads: storage, run launcher, compute logs (deploy/dagster.yaml).
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml

USER 10001:10001

EXPOSE 3000 4000

# The container's role (JOBS_ORCHESTRATION_ROLE: code-server, webserver, daemon, run) says what is checked.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/app/deploy/healthcheck.sh"]

CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "jobs_orchestration.definitions", "--attribute", "defs", \
     "--location-name", "jobs_orchestration"]
