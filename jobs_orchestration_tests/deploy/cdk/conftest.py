"""The CDK app synthesized once per test session (starting the jsii runtime and synthesizing take most
of 20 s): the default stack, and the same stack built into an existing VPC named in context."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii warns on every start that node 20 has left its support window; the machines have node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

EXISTING_VPC_CONTEXT = {
    "existingVpcId": "vpc-0123456789abcdef0",
    "existingVpcAvailabilityZones": "eu-west-1a,eu-west-1b",
    "existingVpcPrivateSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    "existingVpcPublicSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
}


@dataclass(frozen=True)
class Synthesized:
    template: Any
    """aws_cdk.assertions.Template of the default stack."""
    document: dict[str, Any]
    """The same template as plain JSON."""
    path: Path
    existing_vpc_document: dict[str, Any]
    seconds: float


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    started = time.monotonic()
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from deploy.app import STACK_NAME, build_app
    from deploy.stack.stack import JobsOrchestrationStack

    app = build_app(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    # A stage of its own carries the other context; both synthesize in the one pass below.
    elsewhere = cdk.Stage(app, "ExistingVpc")
    for name, value in EXISTING_VPC_CONTEXT.items():
        elsewhere.node.set_context(name, value)
    JobsOrchestrationStack(elsewhere, STACK_NAME)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(STACK_NAME)
    [nested] = assembly.get_nested_assembly(elsewhere.artifact_id).stacks
    seconds = time.monotonic() - started
    print(f"\nCDK synthesis: {seconds:.1f} s")
    return Synthesized(
        template=Template.from_json(artifact.template),
        document=artifact.template,
        path=Path(artifact.template_full_path),
        existing_vpc_document=nested.template,
        seconds=seconds,
    )
