"""Reading a synthesized CloudFormation template."""

from __future__ import annotations

from typing import Any


def resources_of_type(document: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in document["Resources"].items()
        if resource["Type"] == resource_type
    }


def one_resource(document: dict[str, Any], resource_type: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of the type whose logical id starts with `prefix`."""
    found = [
        (logical_id, resource)
        for logical_id, resource in resources_of_type(document, resource_type).items()
        if logical_id.startswith(prefix)
    ]
    assert len(found) == 1, f"{len(found)} {resource_type} named {prefix}*: {[name for name, _ in found]}"
    return found[0]
