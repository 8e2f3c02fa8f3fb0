"""Render docs/clinical-rules.md from the knowledge base and the scenario files.

Run `python scripts/render_clinical_rules.py > docs/clinical-rules.md`; a test fails when the
committed file differs, so the document cannot drift from the rules or the scenarios.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from b12plan.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[1]


def scenario_ids_by_code() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    fires: dict[str, list[str]] = {}
    silent: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests" / "scenarios").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for code in data["expect"].get("codes_present", []):
            fires.setdefault(code, []).append(data["id"])
        for code in data["expect"].get("codes_absent", []):
            silent.setdefault(code, []).append(data["id"])
    return fires, silent


def render() -> str:
    k = load_knowledge()
    citations = {s.id: s.citation for s in k.sources}
    fires, silent = scenario_ids_by_code()
    lines = [
        "# Clinical rules",
        "",
        "Generated from `src/b12plan/knowledge/findings.toml` and `tests/scenarios/` by",
        "`scripts/render_clinical_rules.py`; a test keeps it in step. Knowledge version"
        f" {k.version}, reviewed {k.reviewed_on.isoformat()}.",
        "",
        "b12plan supports clinical judgement; it does not replace it.",
        "",
        "| code | severity | fires in scenarios | silent in scenarios |",
        "|---|---|---|---|",
    ]
    for f in k.findings:
        lines.append(
            f"| [`{f.code}`](#{f.code.lower()}) | {f.severity} | {len(fires.get(f.code, []))}"
            f" | {len(silent.get(f.code, []))} |"
        )
    for f in k.findings:
        sources = [s.strip() for s in f.source.split("+")]
        lines += [
            "",
            f"## {f.code}",
            "",
            f"**{f.title}** ({f.severity})",
            "",
            f"- Rule: {f.rule}",
            f"- Advice: {f.advice}",
            f"- Message: `{f.message}`",
            "- Source: " + "; ".join(f"[{s}] {citations[s]}" for s in sources),
            "- Fires in: " + (", ".join(f"`{i}`" for i in fires.get(f.code, [])) or "none"),
            "- Checked silent in: "
            + (", ".join(f"`{i}`" for i in silent.get(f.code, [])) or "none"),
        ]
    lines += ["", "## Sources", ""]
    lines += [f"- **{s.id}**: {s.citation}" + (f" <{s.url}>" if s.url else "") for s in k.sources]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
