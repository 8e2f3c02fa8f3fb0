"""Condition: a cause of deficiency (b12plan's code, SNOMED CT or ICD-10 from codes.toml)."""

from __future__ import annotations

from b12plan.fhir.codes import ICD10, ICD10_CM
from b12plan.fhir.importing.context import Context, Json, Provenance, shown
from b12plan.fhir.outcome import NOT_SUPPORTED


def read_condition(ctx: Context, i: int, r: Json, out: Json) -> None:
    statuses = {c.get("code") for c in r.get("verificationStatus", {}).get("coding", [])}
    if statuses & {"entered-in-error", "refuted"}:
        return
    cause: str | None = None
    for c in r.get("code", {}).get("coding", []):
        if c.get("system") == ctx.sys.cause:
            cause = c.get("code")
            break
    if cause is None:
        for c in r.get("code", {}).get("coding", []):
            system = ICD10 if c.get("system") == ICD10_CM else c.get("system")
            hit = next(
                (e for e in ctx.codes.cause if e.system == system and e.code == c.get("code")),
                None,
            )
            if hit is not None:
                cause = hit.cause
                break
    if cause is None:
        ctx.warn(
            i,
            "code",
            f"not a cause of B12 deficiency b12plan knows ({shown(r.get('code', {}))}); skipped",
            NOT_SUPPORTED,
        )
        return
    if not ctx.owned(i, r):
        return
    n = len(out["causes"])
    out["causes"].append(cause)
    ctx.provenance.append(Provenance(f"causes[{n}]", i, {"": "code"}))
