"""Where a service call's patient record comes from: prefetch, the EHR's FHIR server, or the store.

CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#providing-fhir-resources-to-a-cds-service): a
missing prefetch key means the client did not fetch it, and the service may query
``fhirServer`` itself. Without a FHIR server the patient id is looked up in b12plan's own
record; the EHR's id and ours only coincide when the EHR was set up that way, so the FHIR
server, when given, always wins (wrong-patient hazard).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from b12plan.cds_hooks.discovery import PATIENT_TOKEN
from b12plan.cds_hooks.request import HookCall
from b12plan.core.model import Case

Json = dict[str, Any]
FhirClientFactory = Callable[[str, str | None], httpx.Client]
"""``(fhir_server, access_token) -> client`` whose base URL is the server."""

MAX_PAGES = 20
"""Search pages followed per query; more means an incomplete record, which is refused."""

FETCH_TIMEOUT_SECONDS = 10.0


class DataUnavailable(Exception):
    """The record cannot be obtained (CDS Hooks: 412 Precondition Failed)."""


@dataclass(frozen=True)
class PatientRecord:
    """Either FHIR entries (from prefetch and/or the FHIR server) or the store's ``Case``."""

    entries: tuple[Any, ...] = ()
    sources: tuple[str, ...] = ()  # where each entry came from, to name it in errors
    case: Case | None = None


def default_fhir_client(server: str, access_token: str | None) -> httpx.Client:
    headers = {"Accept": "application/fhir+json"}
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    return httpx.Client(base_url=server, headers=headers, timeout=FETCH_TIMEOUT_SECONDS)


def _entries(value: Json | None, source: str) -> list[tuple[str, Any]]:
    """A prefetch value or a read result as (source, Bundle entry) pairs.

    Nothing is dropped here: a malformed entry is kept, so that validation names it.
    """
    if value is None:
        return []
    if value.get("resourceType") != "Bundle":
        return [(source, {"resource": value})]
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        return [(f"{source}.entry", entries)]
    return [(f"{source}.entry[{n}]", e) for n, e in enumerate(entries)]


def _unique(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The same resource from two queries counts once."""
    seen: set[tuple[str, str]] = set()
    sources, entries = [], []
    for source, entry in pairs:
        r = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(r, dict) and "id" in r:
            key = (str(r.get("resourceType")), str(r["id"]))
            if key in seen:
                continue
            seen.add(key)
        sources.append(source)
        entries.append(entry)
    return tuple(sources), tuple(entries)


def _record(pairs: Iterable[tuple[str, Any]]) -> PatientRecord:
    sources, entries = _unique(pairs)
    return PatientRecord(entries=entries, sources=sources)


def _fetch(client: httpx.Client, server: str, query: str) -> list[tuple[str, Any]]:
    """One prefetch query against the server, following ``next`` pages on the same server."""
    entries: list[tuple[str, Any]] = []
    url: str | None = query
    for _ in range(MAX_PAGES):
        assert url is not None
        try:
            response = client.get(url)
        except httpx.HTTPError as exc:
            raise DataUnavailable(f"{query}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise DataUnavailable(f"{query}: the FHIR server answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise DataUnavailable(f"{query}: the FHIR server answered with no JSON") from None
        if not isinstance(body, dict):
            raise DataUnavailable(f"{query}: the FHIR server answered with no FHIR resource")
        entries.extend(_entries(body, f"{server}/{url}" if url == query else url))
        url = next(
            (link.get("url") for link in body.get("link", []) if link.get("relation") == "next"),
            None,
        )
        if url is None:
            return entries
        if not url.startswith(server + "/"):
            raise DataUnavailable(f"{query}: a next-page link leaves the FHIR server ({url})")
    raise DataUnavailable(f"{query}: more than {MAX_PAGES} pages")


def gather(
    call: HookCall,
    templates: dict[str, str],
    *,
    load_case: Callable[[str], Case | None],
    fhir_client_factory: FhirClientFactory,
    fhir_servers: Collection[str] | None,
) -> PatientRecord:
    """The patient's record for this call, or ``DataUnavailable`` saying why not.

    ``load_case`` gives the store's ``Case`` (``None``: no such patient; ``contract.CaseError``:
    the stored record is not a valid case)."""
    prefetch = call.prefetch or {}
    missing = [key for key in templates if key not in prefetch]
    given = [
        pair
        for key in templates
        if key in prefetch
        for pair in _entries(prefetch[key], f"prefetch.{key}")
    ]
    if not missing:
        return _record(given)
    if call.fhir_server is not None:
        server = call.fhir_server
        if fhir_servers is not None and server not in fhir_servers:
            raise DataUnavailable(f"FHIR server {server} is not one this service may query")
        fetched: list[tuple[str, Any]] = []
        with fhir_client_factory(server, call.access_token) as client:
            for key in missing:
                query = templates[key].replace(PATIENT_TOKEN, quote(call.patient_id, safe=""))
                fetched.extend(_fetch(client, server, query))
        return _record(given + fetched)
    case = load_case(call.patient_id)
    if case is None:
        lacking = "no prefetch" if not prefetch else f"prefetch lacks {', '.join(missing)}"
        raise DataUnavailable(
            f"{lacking}, no fhirServer, and b12plan holds no record for patient {call.patient_id!r}"
        )
    return PatientRecord(case=case)
