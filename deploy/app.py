"""The AWS CDK app: `python deploy/app.py` (or `cdk synth` from the repository root) writes the
CloudFormation template to cdk.out/ offline, with no AWS account. Context values (-c name=value) are
described in deploy/stack/parameters.py; README's "Deploying to AWS" has the whole procedure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
# `python deploy/app.py` puts deploy/ first on the path; the stack imports `deploy.stack` and the
# project's own settings from the repository root.
sys.path.insert(0, str(REPOSITORY))

import aws_cdk as cdk  # noqa: E402

from deploy.stack.stack import JobsOrchestrationStack  # noqa: E402

STACK_NAME = "JobsOrchestration"


def build_app(outdir: str | None = None, context: dict | None = None) -> cdk.App:
    # The cdk CLI passes its output folder in CDK_OUTDIR; run by hand, the template goes to cdk.out/.
    app = cdk.App(
        outdir=outdir or os.environ.get("CDK_OUTDIR") or str(REPOSITORY / "cdk.out"), context=context
    )
    JobsOrchestrationStack(
        app,
        STACK_NAME,
        description="Jobs orchestration on Dagster: webserver, daemon, code server and run tasks on ECS Fargate",
    )
    return app


if __name__ == "__main__":
    build_app().synth()
