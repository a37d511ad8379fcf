"""Changelog event types, their detail shapes and categories, and event timestamps.

The producers' contract is in design/messages.md. Where it gives a detail's shape, the detail is
validated against it (required fields present, optional `?` fields absent or null, right JSON types);
where it says "an object", any JSON object is accepted and stored unchanged. Fields a shape does not
name are dropped, as the original's decoders did, so the stored and published detail is always the
documented shape. Every failure raises `InvalidChangelogEvent` naming the field and the value, so a
bad message can be dead-lettered with a reason a person can act on.

The SQS intake imports `validate_event`, `parse_event_timestamp`, `InvalidChangelogEvent`,
`EVENT_TYPES` and `event_category` from here: keep these names stable.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator


class InvalidChangelogEvent(ValueError):
    """A changelog event that cannot be stored: unknown type, wrong detail shape or bad timestamp."""


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _canonical_uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


# Ids the platform keeps as integers (collections, contributors, packages, statuses). Ids of users,
# teams and owners are not typed by the contract, so those accept an integer or a string.
Identifier = StrictInt
PrincipalId = StrictInt | StrictStr


# --- Dataset (METADATA) ---------------------------------------------------------------------------
class EmptyDetail(_Detail):
    pass


class UpdateName(_Detail):
    oldName: StrictStr
    newName: StrictStr


class UpdateDescription(_Detail):
    oldDescription: StrictStr | None = None
    newDescription: StrictStr | None = None


class UpdateLicense(_Detail):
    oldLicense: StrictStr | None = None
    newLicense: StrictStr | None = None


class TagDetail(_Detail):
    name: StrictStr


class UpdateReadme(_Detail):
    oldReadme: StrictStr | None = None
    newReadme: StrictStr | None = None


class UpdateBannerImage(_Detail):
    oldBanner: StrictStr | None = None
    newBanner: StrictStr | None = None


class CollectionDetail(_Detail):
    id: Identifier
    name: StrictStr


class ContributorDetail(_Detail):
    id: Identifier
    firstName: StrictStr
    middleInitial: StrictStr | None = None
    lastName: StrictStr
    degree: StrictStr | None = None


class ExternalPublicationDetail(_Detail):
    doi: StrictStr
    relationshipType: StrictStr


class UpdateIgnoreFiles(_Detail):
    totalCount: StrictInt


class DatasetStatusDetail(_Detail):
    id: Identifier
    name: StrictStr
    displayName: StrictStr


class UpdateStatus(_Detail):
    oldStatus: DatasetStatusDetail
    newStatus: DatasetStatusDetail


# --- Permissions ----------------------------------------------------------------------------------
class UpdatePermission(_Detail):
    oldRole: StrictStr | None = None
    newRole: StrictStr | None = None
    userId: PrincipalId | None = None
    teamId: PrincipalId | None = None
    organizationId: PrincipalId | None = None


class UpdateOwner(_Detail):
    oldOwner: PrincipalId
    newOwner: PrincipalId


# --- Packages (FILES) -----------------------------------------------------------------------------
class PackageParent(_Detail):
    id: Identifier
    nodeId: StrictStr | None = None
    name: StrictStr | None = None


class PackageDetail(_Detail):
    """CREATE_PACKAGE and DELETE_PACKAGE."""

    id: Identifier
    nodeId: StrictStr | None = None
    name: StrictStr | None = None
    parent: PackageParent | None = None


class RenamePackage(_Detail):
    id: Identifier
    nodeId: StrictStr | None = None
    oldName: StrictStr
    newName: StrictStr
    parent: PackageParent | None = None


class MovePackage(_Detail):
    id: Identifier
    nodeId: StrictStr | None = None
    name: StrictStr | None = None
    oldParent: PackageParent | None = None
    newParent: PackageParent | None = None


# --- Models and records ---------------------------------------------------------------------------
class ModelDetail(_Detail):
    id: str
    name: StrictStr

    @field_validator("id", mode="before")
    @classmethod
    def _canonical_id(cls, value: Any) -> str:
        return _canonical_uuid(value)


class ModelPropertyDetail(_Detail):
    modelId: str
    modelName: StrictStr
    propertyName: StrictStr

    @field_validator("modelId", mode="before")
    @classmethod
    def _canonical_model_id(cls, value: Any) -> str:
        return _canonical_uuid(value)


# --- Custom ---------------------------------------------------------------------------------------
class CustomEvent(_Detail):
    event_type: StrictStr
    message: StrictStr


ANY_OBJECT = None
"""Marks a type whose detail is any JSON object, stored and published unchanged."""

METADATA = "METADATA"
FILES = "FILES"
PUBLISHING = "PUBLISHING"
PERMISSIONS = "PERMISSIONS"
RECORDS_AND_MODELS = "RECORDS_AND_MODELS"
CUSTOM = "CUSTOM"
UNKNOWN = "UNKNOWN"

_PUBLISHING_TYPES = [
    f"{action}_{subject}"
    for action in ("REQUEST", "ACCEPT", "REJECT", "CANCEL")
    for subject in ("PUBLICATION", "EMBARGO", "REMOVAL", "REVISION")
] + ["RELEASE_EMBARGO"]

EVENT_TYPES: dict[str, tuple[str, type[_Detail] | None]] = {
    # event type -> (category, detail model or ANY_OBJECT)
    "CREATE_DATASET": (METADATA, EmptyDetail),
    "UPDATE_METADATA": (METADATA, EmptyDetail),  # deprecated by the platform, still accepted
    "UPDATE_NAME": (METADATA, UpdateName),
    "UPDATE_DESCRIPTION": (METADATA, UpdateDescription),
    "UPDATE_LICENSE": (METADATA, UpdateLicense),
    "ADD_TAG": (METADATA, TagDetail),
    "REMOVE_TAG": (METADATA, TagDetail),
    "UPDATE_README": (METADATA, UpdateReadme),
    "UPDATE_BANNER_IMAGE": (METADATA, UpdateBannerImage),
    "ADD_COLLECTION": (METADATA, CollectionDetail),
    "REMOVE_COLLECTION": (METADATA, CollectionDetail),
    "ADD_CONTRIBUTOR": (METADATA, ContributorDetail),
    "REMOVE_CONTRIBUTOR": (METADATA, ContributorDetail),
    "ADD_EXTERNAL_PUBLICATION": (METADATA, ExternalPublicationDetail),
    "REMOVE_EXTERNAL_PUBLICATION": (METADATA, ExternalPublicationDetail),
    "UPDATE_IGNORE_FILES": (METADATA, UpdateIgnoreFiles),
    "UPDATE_STATUS": (METADATA, UpdateStatus),
    "UPDATE_PERMISSION": (PERMISSIONS, UpdatePermission),
    "UPDATE_OWNER": (PERMISSIONS, UpdateOwner),
    "CREATE_PACKAGE": (FILES, PackageDetail),
    "RENAME_PACKAGE": (FILES, RenamePackage),
    "MOVE_PACKAGE": (FILES, MovePackage),
    "DELETE_PACKAGE": (FILES, PackageDetail),
    "CREATE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "UPDATE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "DELETE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "CREATE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "UPDATE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "DELETE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "CREATE_RECORD": (RECORDS_AND_MODELS, ANY_OBJECT),
    "UPDATE_RECORD": (RECORDS_AND_MODELS, ANY_OBJECT),
    "DELETE_RECORD": (RECORDS_AND_MODELS, ANY_OBJECT),
    **{name: (PUBLISHING, ANY_OBJECT) for name in _PUBLISHING_TYPES},
    "CUSTOM_EVENT": (CUSTOM, CustomEvent),
}


def event_category(event_type: str) -> str:
    """The published `eventCategory` of an event type; `UNKNOWN` for a name outside the contract."""
    entry = EVENT_TYPES.get(event_type)
    return entry[0] if entry else UNKNOWN


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "eventDetail"
    if error["type"] == "missing":
        return f"field {field!r} is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"field {field!r} {message} (got {error.get('input')!r})"


def validate_event(event_type: str, detail: Any) -> dict[str, Any]:
    """The normalized detail of one event, or `InvalidChangelogEvent` naming what is wrong.

    Normalized means the documented fields only, optional ones present as null when absent, UUIDs
    in canonical form; "an object" details come back unchanged.
    """
    if event_type not in EVENT_TYPES:
        raise InvalidChangelogEvent(f"eventType {event_type!r} is not a known changelog event type")
    if not isinstance(detail, dict):
        raise InvalidChangelogEvent(
            f"eventDetail of {event_type} must be a JSON object, got {type(detail).__name__} {detail!r}"
        )
    model = EVENT_TYPES[event_type][1]
    if model is ANY_OBJECT:
        return detail
    try:
        parsed = model.model_validate(detail)
    except ValidationError as error:
        reasons = "; ".join(_describe(item) for item in error.errors())
        raise InvalidChangelogEvent(f"eventDetail of {event_type} is invalid: {reasons}") from None
    return parsed.model_dump(mode="json")


_ZONE_SUFFIX = re.compile(r"^(?P<stamp>[^\[\]]+)\[(?P<zone>[^\[\]]+)\]$")


def parse_event_timestamp(text: str | None, *, now: dt.datetime | None = None) -> dt.datetime:
    """An event's time as an aware UTC datetime; None or empty means now.

    Accepts the forms Java's ISO zoned formatter wrote: `2021-06-01T12:00:00Z`, `2021-06-01T12:00Z[UTC]`,
    `2021-06-01T14:00+02:00[Europe/Paris]` (the offset wins; the zone name must exist), and a zone
    without an offset (`2021-06-01T14:00[Europe/Paris]`). A time with neither is refused as ambiguous.
    """
    if text is None or text == "":
        return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not isinstance(text, str):
        raise InvalidChangelogEvent(f"timestamp must be a string, got {text!r}")
    stamp, zone = text.strip(), None
    match = _ZONE_SUFFIX.match(stamp)
    if match:
        stamp, zone_name = match["stamp"], match["zone"]
        try:
            zone = dt.UTC if zone_name in ("UTC", "Z", "GMT") else zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidChangelogEvent(
                f"timestamp {text!r} names an unknown time zone {zone_name!r}"
            ) from None
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidChangelogEvent(f"timestamp {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if zone is None:
            raise InvalidChangelogEvent(f"timestamp {text!r} has no UTC offset or time zone")
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)
