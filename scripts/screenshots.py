"""The README's first-hour screenshots, taken from the real system: `make screenshots`.

Starts the whole local system as `make dev` does (the same `LocalStack`: moto, database, demo data, code
server, webserver, daemon), in a folder of its own so a developer's `.local/` and run history stay as
they are, or reuses a running one (`--ui http://127.0.0.1:3000`, with the `.local/` it wrote). Sends
the demo's job messages with `.local/demo-messages.sh`, runs the snapshot cleanup a few times with a
shrinking retention (so its plot has points), waits for every run, backfills the storage totals from
the UI, and captures the Dagster UI in headless Chromium (Debian's `/usr/bin/chromium`, driven by
Playwright; no browser download) into docs/screenshots/. Stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from jobs_orchestration.devstack.demo import DEMO_SCRIPT_NAME  # noqa: E402
from jobs_orchestration.devstack.stack import LocalStack, free_port  # noqa: E402

OUTPUT = REPOSITORY / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 900}
LOCATION = "jobs_orchestration"
REPOSITORY_NAME = "__repository__"
DEMO_MESSAGES = ["delete-packages", "delete-dataset", "changelog", "bad-deletion"]
MESSAGE_JOBS = {"delete_package_job", "delete_dataset_job", "dataset_changelog_job"}
CLEANUP_RETENTION_DAYS = [12, 10, 8, 7]
"""One snapshot cleanup run each: the demo's snapshots span 14 days, so each run deletes a few more."""
UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
QUIET_SECONDS = 45
"""No run unfinished and none created for this long: the sensors that follow runs (storage refresh
after a deletion, every 30 s) have had their turn."""
HTTP_TIMEOUT_SECONDS = 30
PAGE_TIMEOUT_MS = 60_000


def log(message: str) -> None:
    print(f"[screenshots] {message}", flush=True)


class Dagster:
    """The webserver's GraphQL API."""

    def __init__(self, ui_url: str, check_processes: Callable[[], None]) -> None:
        self.ui_url = ui_url.rstrip("/")
        self.check_processes = check_processes
        """Raises, naming it, when a process of the system has exited: asked before every query."""

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        self.check_processes()
        request = urllib.request.Request(
            f"{self.ui_url}/graphql",
            data=json.dumps({"query": text, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            document = json.load(response)
        if document.get("errors"):
            raise RuntimeError(f"GraphQL error: {document['errors']}")
        return document["data"]

    def runs(self) -> list[dict[str, Any]]:
        data = self.query(
            "{ runsOrError(limit: 200) { ... on Runs { results { runId jobName status creationTime } } } }"
        )
        return data["runsOrError"]["results"]

    def launch(self, job_name: str, run_config: dict[str, Any]) -> str:
        data = self.query(
            """mutation Launch($params: ExecutionParams!) {
              launchRun(executionParams: $params) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message }
                ... on RunConfigValidationInvalid { errors { message } }
              }
            }""",
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": REPOSITORY_NAME,
                        "jobName": job_name,
                    },
                    "runConfigData": run_config,
                }
            },
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launching {job_name} failed: {data}")
        return data["run"]["runId"]

    def dead_letter_run_ids(self) -> list[str]:
        data = self.query(
            """{ assetOrError(assetKey: {path: ["dead_letter_queue"]}) {
                  ... on Asset { assetObservations(limit: 100) { runId } } } }"""
        )
        return [event["runId"] for event in data["assetOrError"]["assetObservations"] if event["runId"]]

    def asset_check_names(self, asset: str) -> list[str]:
        data = self.query(
            """query Checks($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
                  ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name } } } } } }""",
            {"path": [asset]},
        )
        checks = data["assetNodeOrError"].get("assetChecksOrError") or {}
        return [check["name"] for check in checks.get("checks", [])]

    def latest_check_status(self, asset: str, check: str) -> str | None:
        data = self.query(
            """query Check($key: AssetKeyInput!, $check: String!) {
                  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 1) { status } }""",
            {"key": {"path": [asset]}, "check": check},
        )
        executions = data["assetCheckExecutions"]
        return executions[0]["status"] if executions else None

    def backfills(self) -> list[dict[str, Any]]:
        data = self.query(
            "{ partitionBackfillsOrError(limit: 10) { ... on PartitionBackfills { results { id status } } } }"
        )
        return data["partitionBackfillsOrError"]["results"]


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 900, every: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def wait_for_quiet(dagster: Dagster, expected_jobs: set[str]) -> list[dict[str, Any]]:
    """Every expected job has run, no run is unfinished, and no run was created for QUIET_SECONDS."""
    runs: list[dict[str, Any]] = []

    def quiet() -> bool:
        nonlocal runs
        runs = dagster.runs()
        if expected_jobs - {run["jobName"] for run in runs}:
            return False
        if any(run["status"] in UNFINISHED for run in runs):
            return False
        newest = max((run["creationTime"] for run in runs), default=0)
        return time.time() - newest > QUIET_SECONDS

    wait_until(f"runs of {sorted(expected_jobs)} finished", quiet)
    failed = [f"{run['jobName']} {run['runId']}" for run in runs if run["status"] == "FAILURE"]
    if failed:
        log(f"failed runs (shown as they are): {failed}")
    return runs


@contextmanager
def running_system(ui: str | None, local: Path | None) -> Iterator[tuple[str, Path, Callable[[], None]]]:
    """(UI address, the stack's work folder, a check that its processes still run): the running one
    named by `ui`, or a new one started here and stopped on the way out. A new one's folder is removed
    when all went well, and kept, with its processes' logs, when not."""
    if ui:
        workdir = local or REPOSITORY / ".local"
        if not (workdir / "env").exists():
            raise SystemExit(f"{workdir / 'env'} is missing: is the stack at {ui} running from {workdir}?")
        yield ui, workdir, lambda: None
        return
    (REPOSITORY / ".local").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="screenshots-", dir=REPOSITORY / ".local"))
    stack = LocalStack(workdir=folder / "local", dagster_home=folder / "dagster_home", ui_port=free_port())
    stack.log = log
    try:
        with stack:
            log(f"the system is up at {stack.ui_url}")
            yield stack.ui_url, stack.workdir, stack.check_processes
        log("stopped everything it started")
    except BaseException:
        log(f"kept {folder} and its logs")
        raise
    shutil.rmtree(folder)


def send_demo_messages(workdir: Path) -> None:
    script = workdir / DEMO_SCRIPT_NAME
    log(f"sending {', '.join(DEMO_MESSAGES)} with {script}")
    completed = subprocess.run(
        ["bash", str(script), *DEMO_MESSAGES], capture_output=True, text=True, timeout=600
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(['bash', str(script)])} failed: {completed.stderr}")
    log(completed.stdout.strip())


def run_snapshot_cleanups(dagster: Dagster) -> None:
    for days in CLEANUP_RETENTION_DAYS:
        config = {"ops": {"snapshot_cleanup": {"config": {"retention_days": days}}}}
        run_id = dagster.launch("snapshot_cleanup_job", config)
        log(f"snapshot_cleanup_job with retention_days={days}: run {run_id}")


class Browser:
    def __init__(self, page: Any, ui_url: str) -> None:
        self.page = page
        self.ui_url = ui_url.rstrip("/")

    def open(self, path: str, wait_for_text: str | None = None) -> None:
        self.page.goto(self.ui_url + path, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
        if wait_for_text:
            self.page.get_by_text(wait_for_text).first.wait_for(timeout=PAGE_TIMEOUT_MS)
        self.page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
        self.page.wait_for_timeout(1500)  # charts and tables settle after the data arrives

    def capture(self, name: str, caption: str) -> None:
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path))
        log(f"{path.relative_to(REPOSITORY)} ({path.stat().st_size // 1024} KiB): {caption}")


def backfill_storage_from_the_ui(browser: Browser, dagster: Dagster) -> str:
    """Materialize all of storage_refresh_job's assets for every organization, as an operator does."""
    page = browser.page
    browser.open(f"/locations/{LOCATION}/jobs/storage_refresh_job", wait_for_text="Materialize all")
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_text("3 partitions").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)
    browser.capture("storage-backfill-launch", "Materialize all… with every organization's partition")
    before = {backfill["id"] for backfill in dagster.backfills()}
    dialog.get_by_role("button", name="Launch backfill").click()
    backfill_id = ""

    def launched() -> bool:
        nonlocal backfill_id
        new = [backfill["id"] for backfill in dagster.backfills() if backfill["id"] not in before]
        backfill_id = new[0] if new else ""
        return bool(new)

    wait_until("the backfill appears", launched, timeout=120)
    log(f"backfill {backfill_id} launched from the UI")
    return backfill_id


BACKFILL_ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def backfill_status(dagster: Dagster, backfill_id: str) -> str | None:
    """The backfill's status once it has ended, else None."""
    statuses = {backfill["id"]: backfill["status"] for backfill in dagster.backfills()}
    status = statuses.get(backfill_id)
    return status if status in BACKFILL_ENDED else None


def take_screenshots(ui_url: str, dagster: Dagster, runs: list[dict[str, Any]]) -> None:
    from playwright.sync_api import sync_playwright

    by_job: dict[str, list[str]] = {}
    for run in runs:
        by_job.setdefault(run["jobName"], []).append(run["runId"])
    dead_letter_runs = dagster.dead_letter_run_ids()
    if not dead_letter_runs:
        raise RuntimeError("no run recorded a dead letter: the bad deletion did not end as the demo says")

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page(viewport=VIEWPORT)
        # Dagster invites a local user to its community once; a screenshot has no use for it.
        page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        browser = Browser(page, ui_url)

        backfill_id = backfill_storage_from_the_ui(browser, dagster)
        wait_until("the storage backfill finished", lambda: backfill_status(dagster, backfill_id) is not None)
        if backfill_status(dagster, backfill_id) != "COMPLETED_SUCCESS":
            log(f"backfill {backfill_id} ended {backfill_status(dagster, backfill_id)} (shown as it is)")
        wait_for_quiet(dagster, set())

        started_by_intake = quote("tag:dagster/sensor_name=sqs_jobs_sensor")
        browser.open(f"/runs?q%5B0%5D={started_by_intake}", wait_for_text="delete_dataset_job")
        browser.capture("runs", "the runs sqs_jobs_sensor started for the demo messages, with their tags")

        dataset_deletion = by_job["delete_dataset_job"][0]
        browser.open(f"/runs/{dataset_deletion}?logs=deleted", wait_for_text="packages_deleted")
        browser.capture("deletion-run", "a dataset deletion run and what it deleted")

        browser.open(f"/runs/{dead_letter_runs[0]}?logs=dead", wait_for_text="moved to the dead-letter queue")
        browser.capture("dead-letter-run", "the run that refused a member and dead-lettered it")

        checks = dagster.asset_check_names("dead_letter_queue")
        for check in checks:
            # dead_letter_queue_sensor evaluates it within a minute of the dead letter's arrival.
            wait_until(
                f"{check} evaluated on the dead letter",
                lambda check=check: dagster.latest_check_status("dead_letter_queue", check) == "FAILED",
                timeout=300,
            )
        browser.open("/assets/dead_letter_queue", wait_for_text="Metadata")
        browser.capture("dead-letter-queue-asset", "the dead_letter_queue asset: its latest figures")
        if checks:
            browser.open("/assets/dead_letter_queue?view=checks", wait_for_text=checks[0])
            browser.capture("dead-letter-queue-check", f"the dead_letter_queue asset's check {checks[0]}")
        else:
            log("dead_letter_queue has no asset check in this version: no check screenshot")

        browser.open(f"/runs/b/{backfill_id}?tab=runs", wait_for_text="partition: 3")
        browser.capture("storage-backfill", "the storage backfill: a run per organization's partition")

        browser.open("/assets/organization_storage?view=partitions", wait_for_text="Partitions")
        page.get_by_text("1", exact=True).first.click()
        page.get_by_text("total_bytes").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_timeout(1000)
        browser.capture("storage-partitions", "organization_storage per organization, with its figures")

        browser.open("/assets/snapshot_cleanup", wait_for_text="bytes_freed")
        plots = page.get_by_role("button", name="Plots")
        plots.click()
        page.get_by_text("bytes_freed_last_30_days").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_timeout(1500)
        plots.evaluate("button => button.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(1500)
        browser.capture("snapshot-cleanup-plots", "snapshot_cleanup's metadata plotted over its runs")

        browser.open("/automation", wait_for_text="sqs_jobs_sensor")
        browser.capture("automation", "the sensors and schedules")
        chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ui", help="Reuse the system running at this address (e.g. http://127.0.0.1:3000).")
    parser.add_argument("--local", type=Path, help="The running system's work folder (default .local).")
    arguments = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium (make screenshots does)")

    started = time.monotonic()
    with running_system(arguments.ui, arguments.local) as (ui_url, workdir, check_processes):
        dagster = Dagster(ui_url, check_processes)
        send_demo_messages(workdir)
        run_snapshot_cleanups(dagster)
        runs = wait_for_quiet(dagster, MESSAGE_JOBS | {"snapshot_cleanup_job"})
        take_screenshots(ui_url, dagster, runs)
    log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
