"""FHIR R4's own invariants (the constraints the JSON schema cannot express), checked on JSON.

The official ``fhir.schema.json`` checks shapes, types and value sets of codes; the invariants
below are the FHIRPath rules of the specification that apply to what b12plan writes and reads
(Bundle, the DomainResource rules, Element, Extension, Reference, Quantity, Period, Timing, and
the resource rules of Observation, MedicationAdministration, CarePlan and Condition). Each
problem names its rule and its path, e.g. ``bdl-7: entry[3].fullUrl: ...``. Guidelines (dom-6,
narrative; con-3) are not rules and are left out.

Sources: FHIR R4 (4.0.1) Bundle, DomainResource, Element, Extension, Reference, Quantity,
Period, Timing, Observation, MedicationAdministration, CarePlan and Condition pages, section
"Constraints".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]

_SEARCH = ("searchset",)
_REQUEST = ("batch", "transaction", "history")
_RESPONSE = ("batch-response", "transaction-response", "history")
_WHEN_WITHOUT_OFFSET = ("C", "CM", "CD", "CV")


def bundle_problems(bundle: Json) -> list[str]:
    """Every invariant the Bundle or a resource in it breaks (empty when conformant)."""
    out: list[str] = []
    kind = bundle.get("type")
    if "total" in bundle and kind not in ("searchset", "history"):
        out.append("bdl-1: total: only when a search or history")
    if kind == "document":
        identifier = bundle.get("identifier", {})
        if "system" not in identifier or "value" not in identifier:
            out.append("bdl-9: identifier: a document must have an identifier (system, value)")
        if "timestamp" not in bundle:
            out.append("bdl-10: timestamp: a document must have a date")
    entries: list[Json] = bundle.get("entry", [])
    first = entries[0].get("resource", {}).get("resourceType") if entries else None
    if kind == "document" and first != "Composition":
        out.append("bdl-11: entry[0]: a document must have a Composition as its first resource")
    if kind == "message" and first != "MessageHeader":
        out.append("bdl-12: entry[0]: a message must have a MessageHeader as its first resource")
    seen: dict[tuple[str, str | None], int] = {}
    for n, entry in enumerate(entries):
        at = f"entry[{n}]"
        if "search" in entry and kind not in _SEARCH:
            out.append(f"bdl-2: {at}.search: only when a search")
        if ("request" in entry) != (kind in _REQUEST):
            out.append(f"bdl-3: {at}.request: mandatory for batch/transaction/history, else not")
        if ("response" in entry) != (kind in _RESPONSE):
            out.append(
                f"bdl-4: {at}.response: mandatory for batch-response/transaction-response/"
                "history, else not"
            )
        resource = entry.get("resource")
        if resource is None and "request" not in entry and "response" not in entry:
            out.append(f"bdl-5: {at}: an entry must have a resource or a request or a response")
        url = entry.get("fullUrl")
        if isinstance(url, str):
            if "/_history/" in url:
                out.append(f"bdl-8: {at}.fullUrl: cannot be a version-specific reference")
            version = (resource or {}).get("meta", {}).get("versionId")
            key = (url, version)
            if key in seen and kind != "history":
                out.append(f"bdl-7: {at}.fullUrl: {url!r} again (first in entry[{seen[key]}])")
            seen.setdefault(key, n)
        if isinstance(resource, dict):
            out.extend(resource_problems(resource, f"{at}.resource"))
    return out


def resource_problems(resource: Json, at: str = "") -> list[str]:
    """The invariants of one resource: dom-*, the element rules and its own rules."""
    out: list[str] = []
    prefix = f"{at}." if at else ""
    contained: list[Json] = resource.get("contained", [])
    for k, c in enumerate(contained):
        where = f"{prefix}contained[{k}]"
        if "contained" in c:
            out.append(f"dom-2: {where}: a contained resource cannot contain resources")
        meta = c.get("meta", {})
        if "versionId" in meta or "lastUpdated" in meta:
            out.append(f"dom-4: {where}.meta: no versionId or lastUpdated in a contained resource")
        if "security" in meta:
            out.append(f"dom-5: {where}.meta.security: no security label in a contained resource")
        cid = c.get("id")
        outside = {k: v for k, v in resource.items() if k != "contained"}
        referred = f"#{cid}" in _references(outside) or "#" in _references(c)
        if not referred:
            out.append(f"dom-3: {where}: a contained resource must be referred to (#{cid})")
    ids = {c.get("id") for c in contained}
    for path, value in _walk(resource, at):
        out.extend(_element_problems(path, value, ids))
    out.extend(_resource_rules(resource, prefix))
    return out


def unresolved_references(bundle: Json) -> list[str]:
    """References that resolve neither to a contained resource nor to an entry of the Bundle.

    An entry answers to its ``fullUrl`` and, when the resource has an id, to ``Type/id`` (a
    relative reference, resolved against the same server base); a logical reference (only
    ``identifier``) or a ``display`` alone names nothing to resolve.
    """
    targets: set[str] = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if "fullUrl" in entry:
            targets.add(entry["fullUrl"])
        if "id" in resource:
            targets.add(f"{resource['resourceType']}/{resource['id']}")
    out = []
    for n, entry in enumerate(bundle.get("entry", [])):
        for path, value in _walk(entry.get("resource", {}), f"entry[{n}].resource"):
            ref = value.get("reference") if isinstance(value, dict) else None
            if isinstance(ref, str) and not ref.startswith("#") and ref not in targets:
                out.append(f"{path}.reference: {ref!r} is not in the Bundle")
    return out


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "contained":
                for k, c in enumerate(child):
                    yield from _walk(c, f"{path}.contained[{k}]")
                continue
            yield from _walk(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for k, child in enumerate(value):
            yield from _walk(child, f"{path}[{k}]")


def _references(value: Any) -> set[str]:
    return {
        v["reference"]
        for _, v in _walk(value, "")
        if isinstance(v, dict) and isinstance(v.get("reference"), str)
    }


def _element_problems(path: str, value: Any, contained_ids: set[Any]) -> list[str]:
    out: list[str] = []
    if value in ({}, [], "") or value is None:
        out.append(f"ele-1: {path}: an element must have a value or children")
    if not isinstance(value, dict):
        return out
    key = path.rsplit(".", 1)[-1].split("[")[0]
    if key in ("extension", "modifierExtension"):
        values = [k for k in value if k.startswith("value")]
        if values and "extension" in value:
            out.append(f"ext-1: {path}: an extension has either extensions or a value, not both")
    ref = value.get("reference")
    if isinstance(ref, str) and ref.startswith("#") and ref != "#" and ref[1:] not in contained_ids:
        out.append(f"ref-1: {path}.reference: {ref!r} names no contained resource")
    if "value" in value and "code" in value and "system" not in value:
        out.append(f"qty-3: {path}: a Quantity with a unit code needs its system")
    if (key == "period" or key.endswith("Period")) and _after(value.get("start"), value.get("end")):
        out.append(f"per-1: {path}: start is after end")
    if key == "repeat":
        if "period" in value and "periodUnit" not in value:
            out.append(f"tim-2: {path}: a period needs a periodUnit")
        if "duration" in value and "durationUnit" not in value:
            out.append(f"tim-1: {path}: a duration needs a durationUnit")
        if isinstance(value.get("period"), int | float) and value["period"] < 0:
            out.append(f"tim-5: {path}.period: must be 0 or more")
        if "periodMax" in value and "period" not in value:
            out.append(f"tim-6: {path}.periodMax: only with a period")
        when = value.get("when", [])
        if "offset" in value and (not when or set(when) & set(_WHEN_WITHOUT_OFFSET)):
            out.append(f"tim-9: {path}.offset: only with a when that is not C, CM, CD or CV")
        if "timeOfDay" in value and when:
            out.append(f"tim-10: {path}.timeOfDay: not with when")
    return out


def _after(start: object, end: object) -> bool:
    """``start`` later than ``end``, compared by calendar date (time zones are not resolved)."""
    if not isinstance(start, str) or not isinstance(end, str):
        return False
    return start[:10] > end[:10]


def _resource_rules(r: Json, prefix: str) -> list[str]:
    out: list[str] = []
    kind = r.get("resourceType")
    has_value = any(k.startswith("value") for k in r)
    if kind == "Observation":
        for k, rr in enumerate(r.get("referenceRange", [])):
            if not ({"low", "high", "text"} & set(rr)):
                out.append(f"obs-3: {prefix}referenceRange[{k}]: needs a low, a high or text")
        if "dataAbsentReason" in r and has_value:
            out.append(f"obs-6: {prefix}dataAbsentReason: only when there is no value")
        codes = {(c.get("system"), c.get("code")) for c in r.get("code", {}).get("coding", [])}
        for k, comp in enumerate(r.get("component", [])):
            same = codes & {
                (c.get("system"), c.get("code")) for c in comp.get("code", {}).get("coding", [])
            }
            if same and any(key.startswith("value") for key in comp):
                out.append(
                    f"obs-7: {prefix}component[{k}]: the Observation's own code has no value"
                )
    if kind == "MedicationAdministration":
        dosage = r.get("dosage")
        if (
            dosage is not None
            and "dose" not in dosage
            and not any(key.startswith("rate") for key in dosage)
        ):
            out.append(f"mad-1: {prefix}dosage: needs a dose or a rate")
    if kind == "CarePlan":
        for k, activity in enumerate(r.get("activity", [])):
            if "reference" in activity and "detail" in activity:
                out.append(f"cpl-3: {prefix}activity[{k}]: a reference or a detail, not both")
    if kind == "Condition":
        clinical = {c.get("code") for c in r.get("clinicalStatus", {}).get("coding", [])}
        verification = {c.get("code") for c in r.get("verificationStatus", {}).get("coding", [])}
        abated = any(k.startswith("abatement") for k in r)
        if abated and clinical and not clinical & {"inactive", "resolved", "remission"}:
            out.append(f"con-4: {prefix}clinicalStatus: an abated condition is not active")
        if "entered-in-error" in verification and "clinicalStatus" in r:
            out.append(f"con-5: {prefix}clinicalStatus: not with entered-in-error")
    return out
