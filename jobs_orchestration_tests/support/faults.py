"""Faults injected into real boto3 clients, and their calls watched, by wrapping one of their methods or
hooking their events (never a fake client)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dagster_aws.s3 import S3Resource

DeleteCall = tuple[str, list[str]]
"""(bucket, keys) of one DeleteObjects call."""


def wrap_clients(
    monkeypatch: pytest.MonkeyPatch, resource_class: type, install: Callable[[Any], None]
) -> None:
    """Every client `resource_class` (an AWS resource with `get_client`, and `get_intake_client` for
    the sensors' SQS client) hands out from now on gets `install(client)` applied to it."""
    for name in ("get_client", "get_intake_client"):
        if hasattr(resource_class, name):
            monkeypatch.setattr(resource_class, name, _installing(getattr(resource_class, name), install))


def _installing(original: Callable[[Any], Any], install: Callable[[Any], None]) -> Callable[[Any], Any]:
    def get_client(self: Any) -> Any:
        client = original(self)
        install(client)
        return client

    return get_client


def wrap_s3_clients(
    monkeypatch: pytest.MonkeyPatch,
    install: Callable[[Any], None],
    resource_class: type[S3Resource] = S3Resource,
) -> None:
    """Every S3 client `resource_class` hands out from now on gets `install(client)` applied to it."""
    wrap_clients(monkeypatch, resource_class, install)


def record_delete_calls(
    monkeypatch: pytest.MonkeyPatch,
    *,
    per_key_errors: Callable[[str, str], str | None] | None = None,
) -> list[DeleteCall]:
    """Record every DeleteObjects call; `per_key_errors(bucket, key)` may return an S3 error code for
    a key, which is then left in place and reported in the response's Errors, as S3 does."""
    calls: list[DeleteCall] = []

    def install(client: Any) -> None:
        real = client.delete_objects

        def delete_objects(**kwargs: Any) -> dict[str, Any]:
            bucket = kwargs["Bucket"]
            objects = kwargs["Delete"]["Objects"]
            calls.append((bucket, [item["Key"] for item in objects]))
            failing = {}
            if per_key_errors is not None:
                failing = {
                    item["Key"]: code
                    for item in objects
                    if (code := per_key_errors(bucket, item["Key"])) is not None
                }
            kept = [item for item in objects if item["Key"] not in failing]
            response = real(**{**kwargs, "Delete": {**kwargs["Delete"], "Objects": kept}}) if kept else {}
            errors = [{"Key": key, "Code": code, "Message": "injected"} for key, code in failing.items()]
            return {**response, "Errors": response.get("Errors", []) + errors}

        client.delete_objects = delete_objects

    wrap_s3_clients(monkeypatch, install)
    return calls
