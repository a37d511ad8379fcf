"""Names the image, the instance files (deploy/dagster.yaml, deploy/workspace.yaml) and this stack agree
on: container names, ports, commands and the environment variables each side reads."""

from __future__ import annotations

from jobs_orchestration import settings

CODE_LOCATION_NAME = "jobs_orchestration"
CODE_SERVER_PORT = 4000
WEBSERVER_PORT = 3000
SERVICE_DISCOVERY_NAMESPACE = "jobs-orchestration.local"
CODE_SERVER_DISCOVERY_NAME = "code"
CODE_SERVER_HOST = f"{CODE_SERVER_DISCOVERY_NAME}.{SERVICE_DISCOVERY_NAMESPACE}"

WORKSPACE_FILE = "/app/deploy/workspace.yaml"
DAGSTER_HOME = "/opt/dagster/home"

# Container names. The EcsRunLauncher overrides the command of the container named `run`.
CODE_SERVER_CONTAINER = "code"
WEBSERVER_CONTAINER = "webserver"
DAEMON_CONTAINER = "daemon"
RUN_CONTAINER = "run"

CODE_SERVER_COMMAND = [
    "dagster", "api", "grpc",
    "--host", "0.0.0.0",
    "--port", str(CODE_SERVER_PORT),
    "--module-name", "jobs_orchestration.definitions",
    "--attribute", "defs",
    "--location-name", CODE_LOCATION_NAME,
]  # fmt: skip
WEBSERVER_COMMAND = [
    "dagster-webserver",
    "--host", "0.0.0.0",
    "--port", str(WEBSERVER_PORT),
    "--workspace", WORKSPACE_FILE,
]  # fmt: skip
DAEMON_COMMAND = ["dagster-daemon", "run", "--workspace", WORKSPACE_FILE]


def migration_command(domain: str) -> list[str]:
    """The one-off task that migrates a database, run on the run task definition with a command
    override; the URL comes from the container's secret environment, expanded by the shell."""
    variables = {"platform": settings.JOBS_DATABASE_URL, "email_parser": settings.EMAIL_PARSER_DATABASE_URL}
    variable = variables[domain]
    return ["sh", "-c", f'exec jobs-orchestration db upgrade --url "${variable}" --domain {domain}']


MIGRATION_DOMAINS = ("platform", "email_parser")

# The role a container plays, read by deploy/healthcheck.sh.
ROLE_VARIABLE = "JOBS_ORCHESTRATION_ROLE"
ROLES = {
    CODE_SERVER_CONTAINER: "code-server",
    WEBSERVER_CONTAINER: "webserver",
    DAEMON_CONTAINER: "daemon",
    RUN_CONTAINER: "run",
}

# What deploy/dagster.yaml reads.
DAGSTER_PG_HOST = "DAGSTER_PG_HOST"
DAGSTER_PG_PORT = "DAGSTER_PG_PORT"
DAGSTER_PG_DB = "DAGSTER_PG_DB"
DAGSTER_PG_USERNAME = "DAGSTER_PG_USERNAME"
DAGSTER_PG_PASSWORD = "DAGSTER_PG_PASSWORD"
DAGSTER_COMPUTE_LOG_BUCKET = "DAGSTER_COMPUTE_LOG_BUCKET"
DAGSTER_COMPUTE_LOG_PREFIX = "DAGSTER_COMPUTE_LOG_PREFIX"
DAGSTER_RUN_TASK_DEFINITION = "DAGSTER_RUN_TASK_DEFINITION"
DAGSTER_RUN_TASK_ROLE_ARN = "DAGSTER_RUN_TASK_ROLE_ARN"
DAGSTER_ECS_CLUSTER = "DAGSTER_ECS_CLUSTER"
DAGSTER_CODE_SERVER_HOST = "DAGSTER_CODE_SERVER_HOST"

COMPUTE_LOG_PREFIX = "compute-logs"
DAGSTER_DATABASE_NAME = "dagster"
