"""Checks made before anything is deleted: the resource belongs to the organization the message names
and the platform has marked it DELETING. Already deleted (a DELETED tombstone) and not found (no row:
deleted with its dataset, whose rows go, or never there) are told apart; neither deletes anything."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration.db.platform import Dataset, DatasetState, Package, PackageState
from jobs_orchestration.deletion.errors import DeletionRefused


class GuardVerdict(enum.StrEnum):
    PROCEED = "proceed"
    ALREADY_DELETED = "already_deleted"
    NOT_FOUND = "not_found"


def check_package(connection: Connection, package_id: int, organization_id: int) -> GuardVerdict:
    row = connection.execute(
        sa.select(Package.organization_id, Package.state).where(Package.id == package_id)
    ).one_or_none()
    return _package_verdict(row, package_id, organization_id)


def check_packages(
    connection: Connection, requests: Sequence[tuple[int, int]]
) -> list[GuardVerdict | DeletionRefused]:
    """`check_package` for each (package id, organization id) in one query; a refusal is returned in
    its request's place, so one refused request leaves the others' verdicts standing."""
    found = {
        row.id: row
        for row in connection.execute(
            sa.select(Package.id, Package.organization_id, Package.state).where(
                Package.id.in_({package_id for package_id, _organization_id in requests})
            )
        )
    }
    verdicts: list[GuardVerdict | DeletionRefused] = []
    for package_id, organization_id in requests:
        try:
            verdicts.append(_package_verdict(found.get(package_id), package_id, organization_id))
        except DeletionRefused as refusal:
            verdicts.append(refusal)
    return verdicts


def _package_verdict(row: Any, package_id: int, organization_id: int) -> GuardVerdict:
    if row is None:
        return GuardVerdict.NOT_FOUND
    if row.organization_id != organization_id:
        raise DeletionRefused(
            f"package_id {package_id} belongs to organization {row.organization_id}, "
            f"not to organization_id {organization_id}: nothing deleted"
        )
    if row.state == PackageState.DELETED:
        return GuardVerdict.ALREADY_DELETED
    if row.state != PackageState.DELETING:
        raise DeletionRefused(
            f"package_id {package_id} is in state {row.state.value}, not DELETING "
            "(restored or never marked for deletion): nothing deleted"
        )
    return GuardVerdict.PROCEED


def check_dataset(connection: Connection, dataset_id: int, organization_id: int) -> GuardVerdict:
    row = connection.execute(
        sa.select(Dataset.organization_id, Dataset.state).where(Dataset.id == dataset_id)
    ).one_or_none()
    if row is None:
        return GuardVerdict.NOT_FOUND
    if row.organization_id != organization_id:
        raise DeletionRefused(
            f"dataset_id {dataset_id} belongs to organization {row.organization_id}, "
            f"not to organization_id {organization_id}: nothing deleted"
        )
    if row.state != DatasetState.DELETING:
        raise DeletionRefused(
            f"dataset_id {dataset_id} is in state {row.state.value}, not DELETING: nothing deleted"
        )
    return GuardVerdict.PROCEED
