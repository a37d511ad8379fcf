#!/bin/sh
# Container health check of the one image, chosen by the container's role (the CDK stack sets
# JOBS_ORCHESTRATION_ROLE on every container). Exit 0 healthy, 1 unhealthy.
set -eu

case "${JOBS_ORCHESTRATION_ROLE:-}" in
  code-server)
    # The gRPC server answers its own health RPC once the code location has loaded.
    exec dagster api grpc-health-check --host 127.0.0.1 --port 4000
    ;;
  webserver)
    exec python -c 'import sys, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:3000/server_info", timeout=5)
except Exception as error:
    sys.exit(f"webserver not answering: {error}")'
    ;;
  daemon)
    # Every daemon thread has written a heartbeat to the instance's storage recently.
    exec dagster-daemon liveness-check
    ;;
  run | "")
    # A run task ends when its run does; a container started by hand has nothing to check.
    exit 0
    ;;
  *)
    echo "JOBS_ORCHESTRATION_ROLE=${JOBS_ORCHESTRATION_ROLE} is not one of code-server, webserver, daemon, run" >&2
    exit 1
    ;;
esac
