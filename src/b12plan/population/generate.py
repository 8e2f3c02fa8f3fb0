"""Synthetic cohorts of any size, written to Parquet in the table contract's layout.

Generation is DuckDB SQL over ``range()``, one chunk of patients at a time, streamed to Parquet
with pyarrow: memory stays flat however large the cohort, and a million patients take seconds,
not the minutes a Python loop would. Randomness is ``hash(seed, patient, draw)``, so a seed gives
the same cohort byte for byte, whatever the chunk size or thread count.

Shares of each history come from ``profile.toml`` (a synthetic profile, cited where a study gives
the figure); laboratory values are drawn around the knowledge base's own cut-offs, and doses,
intervals and loading courses come from its protocols, so the cohort exercises the rules as the
knowledge base defines them.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from b12plan.core.knowledge import Knowledge
from b12plan.population.convert import TableWriter
from b12plan.population.tables import TABLES

DEFAULT_END = date(2026, 3, 1)
"""Histories run up to this date unless told otherwise (a fixed date keeps cohorts reproducible)."""

_HASH_MOD = 1_000_003  # a prime: uniform draws have about 1e6 distinct values
_DIGITS = {  # decimals a laboratory reports, by unit (presentation, not a clinical figure)
    "umol/L": 2,
    "µmol/L": 2,
    "g/dL": 1,
    "ug/L": 1,
    "µg/L": 1,
    "ng/mL": 1,
}


@dataclass(frozen=True)
class GenerationStats:
    patients: int
    rows: dict[str, int]
    bytes_on_disk: int
    seconds: float


@cache
def load_profile() -> dict[str, Any]:
    """The shipped synthetic profile (shares of each history)."""
    text = resources.files(__package__).joinpath("profile.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def generate(
    patients: int,
    out: Path,
    knowledge: Knowledge,
    *,
    seed: int = 0,
    end: date = DEFAULT_END,
    chunk_size: int = 100_000,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationStats:
    """Write ``patients`` synthetic patients to ``out/<table>.parquet``; returns what was written.

    ``progress`` is called with the number of patients written so far after each chunk.
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    sql = _Sql(knowledge, load_profile(), seed=seed, end=end, patients=patients)
    con = duckdb.connect()
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    con.execute(sql.setup())
    try:
        with TableWriter(out) as writer:
            for lo in range(0, patients, chunk_size):
                hi = min(lo + chunk_size, patients)
                con.execute(sql.chunk(lo, hi))
                for name in TABLES:  # one table at a time: memory holds one table's batch
                    writer.write({name: con.sql(sql.table(name)).to_arrow_table()})
                if progress is not None:
                    progress(hi)
    finally:
        con.close()
    return GenerationStats(
        patients, writer.rows, writer.bytes_on_disk(), time.perf_counter() - started
    )


class _Sql:
    """The generator's SQL, with the profile's shares and the knowledge base's numbers filled in."""

    def __init__(
        self,
        knowledge: Knowledge,
        profile: dict[str, Any],
        *,
        seed: int,
        end: date,
        patients: int,
    ) -> None:
        self.k = knowledge
        self.p = profile
        self.seed = int(seed)
        self.end = f"DATE '{end.isoformat()}'"
        self.width = max(len(str(patients - 1)), 1)
        self.clinics = max(1, math.ceil(patients / float(profile["patients_per_clinic"])))

    # -- random draws -------------------------------------------------------------------------
    def u(self, draw: int, *extra: str) -> str:
        """A uniform draw in (0, 1), fixed by the seed, the patient and the draw number."""
        args = ", ".join([str(self.seed), "n", str(draw), *extra])
        return f"((hash({args}) % {_HASH_MOD}) + 0.5) / {_HASH_MOD}.0"

    def z(self, draw: int, *extra: str) -> str:
        """A standard normal draw (Box-Muller on two uniform draws)."""
        return (
            f"(sqrt(-2 * ln({self.u(draw, *extra)}))"
            f" * cos(2 * pi() * {self.u(draw + 500, *extra)}))"
        )

    def share(self, section: str, key: str) -> float:
        value = self.p[section][key] if section else self.p[key]
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"profile {section}.{key}: expected a share between 0 and 1")
        return float(value)

    # -- knowledge-derived look-up tables ---------------------------------------------------------
    def setup(self) -> str:
        """Protocol, loading-offset and unit tables from the knowledge base."""
        tr = self.p["treatment"]
        neuro_max = int(tr["neuro_loading_doses_min"]) + int(tr["neuro_loading_doses_span"])
        proto_rows, offset_rows = [], []
        for pr in self.k.protocols:
            if pr.oral:  # courses are generated as injections; oral switches are added later
                continue
            planned = pr.loading_doses_planned
            dose_mcg = self.k.formulary.to_mcg(pr.dose, pr.unit)
            proto_rows.append(
                f"('{pr.id}', {'NULL' if planned is None else planned}, "
                f"{pr.maintenance.window.due_interval_days}, '{pr.product}', {dose_mcg}, "
                f"'{pr.routes[0]}', {pr.loading[-1].window.due_interval_days})"
            )
            offset, number = 0, 0
            while number < (planned or neuro_max):
                number += 1
                stage = pr.loading_stage_for_dose(number)
                if number > 1 and stage is not None:
                    offset += stage.window.due_interval_days
                offset_rows.append(f"('{pr.id}', {number}, {offset})")
        allergic = [f"('{e.code}')" for e in self.k.adverse_events if e.kind == "allergic"]
        unit_rows = [
            f"('{a.code}', '{u.symbol}', {u.factor}, {_DIGITS.get(u.symbol, 0)})"
            for a in self.k.analytes
            for u in a.units
        ]
        return f"""
        CREATE TEMP TABLE kb_protocol AS SELECT * FROM (VALUES {", ".join(proto_rows)})
            AS t(protocol_id, planned, maint_due, product, dose_mcg, route, loading_due);
        CREATE TEMP TABLE kb_offset AS SELECT * FROM (VALUES {", ".join(offset_rows)})
            AS t(protocol_id, j, offset_days);
        CREATE TEMP TABLE kb_unit AS SELECT * FROM (VALUES {", ".join(unit_rows)})
            AS t(code, unit, factor, digits);
        CREATE TEMP TABLE kb_allergic AS SELECT * FROM (VALUES {", ".join(allergic)})
            AS t(code);
        """

    def _cumulative(self, section: str, names: list[str], draw: str) -> str:
        """CASE picking one name by cumulative shares of one uniform draw (else NULL)."""
        parts, total = [], 0.0
        for name in names:
            total += self.share(section, name)
            parts.append(f"WHEN {draw} < {total} THEN '{name}'")
        if total > 1:
            raise ValueError(f"profile [{section}]: shares add up to more than 1")
        return f"CASE {' '.join(parts)} END"

    # -- one chunk of patients --------------------------------------------------------------------
    def chunk(self, lo: int, hi: int) -> str:
        p, tr = self.p, self.p["treatment"]
        u = self.u
        b12 = self.k.analyte("b12_total")
        causes = [
            c
            for c in p["causes"]
            if c not in ("pregnancy_share_young_women", "second_drug_cause_share")
        ]
        history_days = int(float(p["history_years"]) * 365)
        neuro_min, neuro_span = (
            int(tr["neuro_loading_doses_min"]),
            int(tr["neuro_loading_doses_span"]),
        )
        stopped_factor = self.k.timing("stopped_factor")
        oral_doses = sorted(
            self.k.formulary.to_mcg(pr.dose, pr.unit) for pr in self.k.protocols if pr.oral
        )
        oral_low, oral_high = oral_doses[0], oral_doses[-1]
        return f"""
        CREATE OR REPLACE TEMP TABLE pt AS
        WITH b AS (
            SELECT n,
                'P' || lpad(CAST(n AS VARCHAR), {self.width}, '0') AS patient_id,
                'C' || lpad(CAST(CAST(floor({u(1)} * {self.clinics}) AS BIGINT) + 1 AS VARCHAR),
                            {len(str(self.clinics))}, '0') AS clinic_id,
                CASE WHEN {u(2)} < {self.share("", "female_share")} THEN 'female'
                     ELSE 'male' END AS sex,
                {float(p["age_min"])} + {u(3)} * {float(p["age_span"])} AS age_years,
                CASE WHEN {u(4)} < {self.share("", "us_share")} THEN 'US' ELSE 'GB' END
                    AS jurisdiction,
                {self._cumulative("causes", causes, u(5))} AS cause1,
                CASE WHEN {u(10)} < {self.share("causes", "second_drug_cause_share")}
                     THEN CASE WHEN {u(11)} < 0.5 THEN 'metformin' ELSE 'ppi' END END AS cause2,
                {self._cumulative("deficiency", ["deficient", "indeterminate", "normal"], u(6))}
                    AS truth,
                {u(7)} < {self.share("deficiency", "neurological")} AS neuro,
                {u(8)} >= {self.share("treatment", "untreated")} AS treated,
                {self.end} - CAST(floor({u(14)} * {history_days}) AS INTEGER) AS start_date,
                {u(15)} AS u_pretest,
                {self._cumulative("treatment", ["loading_full", "loading_partial"], u(18))}
                    AS loading_pattern,
                {u(19)} AS u_loading,
                {u(20)} < {self.share("treatment", "prescribed_interval_longer")} AS longer,
                {u(21)} AS u_mode,
                {u(22)} AS u_stop,
                {u(13)} < {self.share("", "us_low_dose_share")} AS us_low,
                {u(110)} < {self.share("v11", "child_share")} AS child,
                {u(111)} AS u_child_age,
                {u(112)} AS u_v11
            FROM range({lo}, {hi}) t(n)
        ), c AS (
            SELECT b.*,
                {self.end} - CAST(CASE WHEN child
                    THEN 0.5 + u_child_age * {float(p["v11"]["child_age_max"]) - 0.5}
                    ELSE age_years END * 365.25 AS INTEGER) AS birth_date,
                sex = 'female' AND age_years < 45 AND NOT child
                    AND {u(12)} < {self.share("causes", "pregnancy_share_young_women")} AS pregnant,
                sex = 'female' AND age_years < 45 AND NOT child
                    AND {u(12)} >= 1 - {self.share("v11", "breastfeeding_share_young_women")}
                    AS breastfeeding,
                CASE WHEN jurisdiction = 'US' THEN
                        CASE WHEN us_low THEN 'us-cyanocobalamin-label'
                             ELSE 'us-cyanocobalamin-1000' END
                     WHEN neuro THEN 'gb-hydroxocobalamin-neuro'
                     WHEN cause1 = 'dietary' AND cause2 IS NULL THEN 'gb-hydroxocobalamin-dietary'
                     ELSE 'gb-hydroxocobalamin-non-neuro' END AS protocol_id,
                NOT treated OR u_pretest >= {self.share("treatment", "no_pretreatment_test")}
                    AS tested_pre,
                CASE WHEN u_mode < {self.share("treatment", "stopped")} THEN 'stopped'
                     WHEN u_mode < {
            self.share("treatment", "stopped") + self.share("treatment", "lapsed_recently")
        } THEN 'lapsed'
                     ELSE 'ongoing' END AS course_mode
            FROM b
        ), d AS (
            SELECT c.*, kp.planned, kp.product, kp.dose_mcg, kp.route, kp.loading_due,
                kp.maint_due,
                CASE WHEN longer
                     THEN CAST(kp.maint_due * {float(tr["longer_interval_factor"])} AS INTEGER)
                     ELSE kp.maint_due END AS interval_days,
                CASE coalesce(loading_pattern, 'none')
                    WHEN 'loading_full' THEN coalesce(kp.planned,
                        {neuro_min} + CAST(floor(u_loading * {neuro_span}) AS INTEGER))
                    WHEN 'loading_partial' THEN 2 + CAST(floor(u_loading
                        * GREATEST(coalesce(kp.planned, {neuro_min}) - 3, 1)) AS INTEGER)
                    ELSE 1 END AS loading_n,
                start_date - 3 - CAST(floor({u(17)} * 40) AS INTEGER) AS test_date
            FROM c JOIN kb_protocol kp USING (protocol_id)
        ), e AS (
            SELECT d.*, d.start_date + o.offset_days AS last_loading
            FROM d JOIN kb_offset o ON o.protocol_id = d.protocol_id AND o.j = d.loading_n
        ), f AS (
            SELECT e.*,
                CASE WHEN last_loading >= {self.end} THEN 0
                     ELSE CAST(floor(date_diff('day', last_loading, {self.end})
                                     / interval_days) AS INTEGER) END AS k_max
            FROM e
        )
        SELECT f.*,
            CASE course_mode
                WHEN 'ongoing' THEN k_max
                WHEN 'lapsed' THEN GREATEST(k_max - 1, 0)
                ELSE CAST(floor(u_stop * GREATEST(k_max - {stopped_factor} - 1, 0)) AS INTEGER)
            END AS k_last,
            treated AND {u(113)} < {self.share("v11", "transfer_in")} AS transfer_in,
            start_date - 100 - CAST(floor({u(114)} * 1500) AS INTEGER) AS prior_since,
            {u(115)} < {self.share("v11", "transfer_loading_completed")} AS prior_loading_completed,
            CASE WHEN {u(116)} < {self.share("v11", "deceased")}
                 THEN {self.end} - CAST(floor({u(117)} * 365) AS INTEGER) END AS deceased_date,
            treated AND {u(118)} < {self.share("v11", "oral_switch")} AS oral_switch,
            CASE WHEN {u(119)} < {self.share("v11", "oral_low_dose")} THEN {oral_low} ELSE {
            oral_high
        } END
                AS oral_dose_mcg
        FROM f;

        CREATE OR REPLACE TEMP TABLE adm AS
        SELECT * FROM (
            SELECT pt.n, pt.patient_id, pt.start_date + o.offset_days AS event_date,
                   'loading' AS phase, o.j AS k
            FROM pt JOIN kb_offset o ON o.protocol_id = pt.protocol_id AND o.j <= pt.loading_n
            WHERE pt.treated
            UNION ALL
            SELECT n, patient_id,
                last_loading + CAST(k * interval_days
                    + floor({u(30, "k")} * {2 * int(tr["jitter_days"]) + 1})
                    - {int(tr["jitter_days"])} AS INTEGER) AS event_date,
                'maintenance' AS phase, k
            FROM (SELECT pt.*, unnest(generate_series(1, pt.k_last)) AS k
                  FROM pt WHERE pt.treated AND pt.k_last >= 1)
            WHERE k = k_last OR {u(31, "k")} >= {self.share("treatment", "missed_dose")}
        ) WHERE event_date <= {self.end};

        CREATE OR REPLACE TEMP TABLE course AS
        SELECT patient_id, min(event_date) AS first_dose, max(event_date) AS last_dose,
               min(CASE WHEN phase = 'maintenance' THEN event_date END) AS first_maintenance,
               count(*) AS doses
        FROM adm GROUP BY patient_id;

        CREATE OR REPLACE TEMP TABLE obs_raw AS
        SELECT * FROM (
            -- pre-treatment panel (or the only tests of the untreated)
            SELECT n, patient_id, test_date AS event_date, 'b12_total' AS code,
                CASE truth
                    WHEN 'deficient' THEN {b12.deficient_below} * LEAST(0.97, GREATEST(0.25,
                        0.7 * exp(0.25 * {self.z(40)})))
                    WHEN 'indeterminate' THEN {b12.deficient_below} + 1
                        + {u(41)} * ({b12.normal_above} - {b12.deficient_below} - 2)
                    ELSE {b12.normal_above} * (1.02 + abs(0.45 * {self.z(42)})) END AS true_value
            FROM pt WHERE tested_pre
            UNION ALL
            SELECT n, patient_id, test_date, 'mma',
                CASE WHEN {u(43)} < 0.5 THEN {self._raised("mma")} * (1.1 + 2 * {u(44)})
                     ELSE {self._raised("mma")} * (0.3 + 0.6 * {u(44)}) END
            FROM pt WHERE tested_pre AND truth = 'indeterminate'
                AND {u(45)} < {self.share("deficiency", "mma_tested_when_indeterminate")}
            UNION ALL
            SELECT n, patient_id, test_date, 'haemoglobin', {self._hb("pt")}
            FROM pt WHERE tested_pre AND {u(46)} < 0.8
            UNION ALL
            SELECT n, patient_id, test_date, 'mcv',
                CASE WHEN truth = 'deficient'
                          AND {u(47)} < {
            self.share("deficiency", "macrocytic_anaemia_when_deficient")
        }
                     THEN {self._raised("mcv")} * (1.02 + 0.15 * {u(48)})
                     ELSE {self._raised("mcv")} * (0.82 + 0.17 * {u(48)}) END
            FROM pt WHERE tested_pre AND {u(46)} < 0.8
            UNION ALL
            SELECT n, patient_id, test_date, 'folate', 2 + 18 * {u(49)}
            FROM pt WHERE tested_pre AND {u(50)} < 0.3
            UNION ALL
            -- a level drawn only after injections began (reflects the injections)
            SELECT n, patient_id, start_date + 7 + CAST(floor({u(51)} * 60) AS INTEGER),
                'b12_total', {b12.normal_above} * (1.5 + 2.5 * {u(52)})
            FROM pt WHERE treated AND NOT tested_pre
                AND {u(53)} < {self.share("treatment", "late_test_when_untested")}
            UNION ALL
            -- full blood count at about 8 weeks
            SELECT n, patient_id, start_date + 50 + CAST(floor({u(54)} * 15) AS INTEGER),
                'haemoglobin', {self._hb_normal("pt")}
            FROM pt WHERE treated AND {u(55)} < {self.share("monitoring", "fbc_followup")}
            UNION ALL
            SELECT n, patient_id, start_date + 50 + CAST(floor({u(54)} * 15) AS INTEGER),
                'mcv', {self._raised("mcv")} * (0.82 + 0.17 * {u(56)})
            FROM pt WHERE treated AND {u(55)} < {self.share("monitoring", "fbc_followup")}
            UNION ALL
            -- serum B12 re-measured during treatment
            SELECT n, patient_id, start_date + 20 + CAST(floor({u(57)} * 300) AS INTEGER),
                'b12_total', {b12.normal_above} * (1.2 + 3 * {u(58)})
            FROM pt WHERE treated AND {u(59)} < {self.share("monitoring", "post_injection_b12")}
            UNION ALL
            -- pre-dose (trough) levels the day before maintenance doses 2, 3 and 4
            SELECT n, pt.patient_id, adm.event_date - 1, 'b12_total',
                CASE WHEN {u(60)} < {self.share("monitoring", "trough_series_falling")}
                     THEN {b12.normal_above} * (1.1 - 0.3 * (adm.k - 1)) * (0.95 + 0.1 * {u(61)})
                     ELSE {b12.normal_above} * (1.1 + 0.5 * {u(62, "adm.k")}) END
            FROM pt JOIN adm USING (n)
            WHERE adm.phase = 'maintenance' AND adm.k IN (2, 3, 4)
                AND {u(63)} < {self.share("monitoring", "trough_series")}
            UNION ALL
            -- a result filed with a date after the end date
            SELECT n, patient_id, {self.end} + 1 + CAST(floor({u(64)} * 30) AS INTEGER),
                'b12_total', {b12.normal_above} * (1 + {u(65)})
            FROM pt WHERE {u(66)} < {self.share("monitoring", "recorded_after_end")}
        )
        -- a laboratory reports one value per analyte and day
        QUALIFY ROW_NUMBER() OVER (PARTITION BY n, code, event_date ORDER BY true_value) = 1;
        """

    def _raised(self, code: str) -> float:
        limit = self.k.analyte(code).raised_above
        if limit is None:
            raise ValueError(f"analyte {code}: the generator needs raised_above")
        return limit

    def _anaemia_cut(self, alias: str) -> str:
        cuts = {a.group: a.hb_below_g_per_l for a in self.k.anaemia}
        return (
            f"(CASE WHEN {alias}.pregnant THEN {cuts['pregnant']} "
            f"WHEN {alias}.sex = 'female' THEN {cuts['female']} ELSE {cuts['male']} END)"
        )

    def _hb(self, alias: str) -> str:
        """Anaemic (sometimes severely) with macrocytic deficiency, else in range."""
        share = self.share("deficiency", "macrocytic_anaemia_when_deficient")
        return (
            f"CASE WHEN {alias}.truth = 'deficient' AND {self.u(47)} < {share}"
            f" THEN {self._anaemia_cut(alias)} * (0.55 + 0.4 * {self.u(67)})"
            f" ELSE {self._hb_normal(alias)} END"
        )

    def _hb_normal(self, alias: str) -> str:
        return f"{self._anaemia_cut(alias)} * (1.01 + 0.2 * {self.u(68)})"

    # -- output tables ----------------------------------------------------------------------------
    def table(self, name: str) -> str:
        u = self.u
        end = self.end
        if name == "patients":
            return """SELECT n AS patient_key, patient_id, clinic_id, sex, birth_date,
                       jurisdiction, deceased_date,
                       CASE WHEN transfer_in THEN prior_since END AS prior_since,
                       CASE WHEN transfer_in THEN prior_loading_completed END
                           AS prior_loading_completed
                       FROM pt ORDER BY n"""
        if name == "causes":
            return """SELECT n AS patient_key, cause FROM (
                        SELECT n, cause1 AS cause FROM pt WHERE cause1 IS NOT NULL
                        UNION SELECT n, cause2 FROM pt WHERE cause2 IS NOT NULL
                        UNION SELECT n, 'pregnancy' FROM pt WHERE pregnant
                        UNION SELECT n, 'breastfeeding' FROM pt WHERE breastfeeding)
                      ORDER BY n, cause"""
        if name == "observations":
            gb_ng = self.share("units", "gb_b12_ng_per_l")
            us_pmol = self.share("units", "us_b12_pmol_per_l")
            mma_nmol = self.share("units", "mma_nmol_per_l")
            hb_dl_us = self.share("units", "hb_g_per_dl_us")
            hb_dl_gb = self.share("units", "hb_g_per_dl_gb")
            hb_dl = next(
                x.factor for x in self.k.analyte("haemoglobin").units if x.symbol == "g/dL"
            )
            draw = u(70, "date_diff('day', DATE '1970-01-01', o.event_date)", "hash(o.code)")
            return f"""
            WITH o AS (
                SELECT o.*, pt.jurisdiction,
                    CASE o.code
                        WHEN 'b12_total' THEN CASE
                            WHEN pt.jurisdiction = 'US' THEN
                                CASE WHEN {draw} < {us_pmol} THEN 'pmol/L' ELSE 'pg/mL' END
                            ELSE CASE WHEN {draw} < {gb_ng} THEN 'ng/L' ELSE 'pmol/L' END END
                        WHEN 'mma' THEN CASE WHEN {draw} < {mma_nmol} THEN 'nmol/L'
                                             ELSE 'umol/L' END
                        WHEN 'haemoglobin' THEN CASE
                            WHEN {draw} < CASE pt.jurisdiction WHEN 'US' THEN {hb_dl_us}
                                              ELSE {hb_dl_gb} END THEN 'g/dL' ELSE 'g/L' END
                        WHEN 'mcv' THEN 'fL'
                        ELSE 'ug/L' END AS reported_unit
                FROM obs_raw o JOIN pt USING (n)
            ), r AS (
                SELECT o.*,
                    -- now and then a g/dL figure filed as g/L (an implausible haemoglobin)
                    CASE WHEN o.code = 'haemoglobin' AND o.reported_unit = 'g/L'
                              AND {u(127, "date_diff('day', DATE '1970-01-01', o.event_date)")}
                                  < {self.share("v11", "implausible_hb")}
                         THEN round(o.true_value / {hb_dl}, 1)
                         ELSE round(o.true_value / ku.factor, ku.digits) END AS reported_value,
                    ku.factor
                FROM o JOIN kb_unit ku ON ku.code = o.code AND ku.unit = o.reported_unit
            )
            SELECT r.n AS patient_key, r.event_date, r.code, r.reported_value * r.factor AS value,
                   canon.unit, CAST(NULL AS DOUBLE) AS reference_low,
                   CAST(NULL AS DOUBLE) AS reference_high, r.reported_value, r.reported_unit,
                   CAST(NULL AS DOUBLE) AS reported_reference_low,
                   CAST(NULL AS DOUBLE) AS reported_reference_high
            FROM r JOIN kb_unit canon ON canon.code = r.code AND canon.factor = 1
                AND canon.unit = {self._canonical_case("r.code")}
            ORDER BY r.n, r.event_date, r.code, r.reported_value"""
        if name == "administrations":
            return f"""
            SELECT adm.n AS patient_key, adm.event_date, pt.product,
                pt.dose_mcg,
                CASE WHEN pt.jurisdiction = 'US' AND {u(32, "adm.k")} < {
                self.share("treatment", "sc_route")
            }
                     THEN 'SC' ELSE pt.route END AS route,
                CASE WHEN adm.phase = 'loading' THEN 'clinic'
                     WHEN {u(33, "adm.k")} < {self.share("treatment", "self_injection")}
                         THEN 'self'
                     WHEN {u(33, "adm.k")} < {
                self.share("treatment", "self_injection")
                + self.share("treatment", "carer_injection")
            }
                         THEN 'carer'
                     ELSE 'clinic' END AS given_by,
                {self._reported_dose("pt")}
            FROM adm JOIN pt USING (n)
            -- the same dose charted twice on one day
            CROSS JOIN (SELECT 1 AS copy UNION ALL SELECT 2) AS copies
            WHERE copies.copy = 1 OR {u(120, "adm.k", "hash(adm.phase)")} < {
                self.share("v11", "duplicate_dose")
            }
            UNION ALL
            -- the first oral dose after a switch to oral cyanocobalamin
            SELECT pt.n, course.last_dose + 14, 'cyanocobalamin', pt.oral_dose_mcg, 'oral', 'self',
                pt.oral_dose_mcg, 'mcg'
            FROM pt JOIN course USING (patient_id)
            WHERE pt.oral_switch AND course.last_dose + 14 <= {end}
            ORDER BY patient_key, event_date"""
        if name == "prescriptions":
            ended = self.share("treatment", "stopped_with_end_date")
            return f"""
            SELECT pt.n AS patient_key, pt.product, pt.dose_mcg, pt.route,
                CASE WHEN course.first_maintenance IS NOT NULL OR pt.loading_n = 1
                     THEN 'maintenance' ELSE 'loading' END AS phase,
                CASE WHEN course.first_maintenance IS NOT NULL OR pt.loading_n = 1
                     THEN pt.interval_days ELSE pt.loading_due END AS interval_days,
                coalesce(course.first_maintenance, pt.start_date) AS start_date,
                CASE WHEN pt.course_mode = 'stopped' AND {u(34)} < {ended}
                     THEN course.last_dose + 1 END AS end_date,
                {self._reported_dose("pt")}
            FROM pt JOIN course USING (patient_id)
            UNION ALL
            -- switched to oral cyanocobalamin daily two weeks after the last injection
            SELECT pt.n, 'cyanocobalamin', pt.oral_dose_mcg, 'oral', 'maintenance', 1,
                course.last_dose + 14, NULL, pt.oral_dose_mcg, 'mcg'
            FROM pt JOIN course USING (patient_id)
            WHERE pt.oral_switch AND course.last_dose + 14 <= {end}
            ORDER BY patient_key, start_date"""
        if name == "symptoms":
            neuro_codes = [s.code for s in self.k.symptoms if s.neurological]
            other_codes = [s.code for s in self.k.symptoms if not s.neurological]
            review = self.share("monitoring", "symptom_review")
            return f"""
            SELECT * FROM (
                SELECT n AS patient_key, start_date - 5 AS event_date,
                    CASE WHEN neuro THEN {self._pick(neuro_codes, u(80))}
                         ELSE {self._pick(other_codes, u(80))} END AS code,
                    'present' AS status, 'clinician' AS reporter
                FROM pt WHERE neuro OR {u(81)} < 0.7
                UNION ALL
                SELECT pt.n, pt.start_date + 14, {self._pick(neuro_codes, u(80))},
                       'improving', CASE WHEN {u(124)} < 0.5 THEN 'patient' ELSE 'clinician' END
                FROM pt WHERE neuro AND treated AND loading_n > 7
                UNION ALL
                SELECT pt.n, pt.last_loading,
                    {self._pick(neuro_codes, u(80))},
                    CASE WHEN loading_pattern = 'loading_full' THEN 'stable' ELSE 'improving' END,
                    CASE WHEN {u(125)} < {self.share("v11", "patient_reported_neuro_settled")}
                         THEN 'patient' ELSE 'clinician' END
                FROM pt WHERE neuro AND treated AND loading_n > 1
                UNION ALL
                SELECT n, start_date + 80 + CAST(floor({u(82)} * 20) AS INTEGER),
                    CASE WHEN neuro THEN {self._pick(neuro_codes, u(80))}
                         ELSE {self._pick(other_codes, u(80))} END,
                    CASE WHEN {u(83)} < 0.6 THEN 'resolved' ELSE 'improving' END,
                    CASE WHEN {u(126)} < {self.share("v11", "patient_reported_review")}
                         THEN 'patient'
                         WHEN {u(126)} < {
                self.share("v11", "patient_reported_review")
                + self.share("v11", "carer_reported_review")
            } THEN 'carer'
                         ELSE 'clinician' END
                FROM pt WHERE treated AND (neuro OR {u(81)} < 0.7) AND {u(84)} < {review}
            ) WHERE event_date <= {end}
            ORDER BY patient_key, event_date, code, status"""
        if name == "medications":
            return f"""
            SELECT * FROM (
                SELECT n AS patient_key, 'folic_acid' AS code,
                    CASE WHEN treated THEN start_date + 10 ELSE test_date + 5 END AS start_date,
                    CAST(NULL AS DATE) AS end_date
                FROM pt WHERE CASE WHEN treated
                    THEN {u(90)} < {self.share("treatment", "folic_acid_treated")}
                    ELSE {u(90)} < {self.share("treatment", "folic_acid_untreated")} END
                UNION ALL
                SELECT n, cause1, start_date - 400, NULL FROM pt
                WHERE cause1 IN ('metformin', 'ppi')
                UNION ALL
                SELECT n, cause2, start_date - 300, NULL FROM pt
                WHERE cause2 IS NOT NULL AND cause2 IS DISTINCT FROM cause1
                UNION ALL
                SELECT n, 'nitrous_oxide', test_date - 100, NULL FROM pt
                WHERE {u(128)} < {self.share("v11", "nitrous_oxide_medication")}
            ) WHERE start_date <= {end}
            ORDER BY patient_key, code"""
        if name == "adverse_events":
            return f"""
            SELECT patient_key, event_date, code FROM ({self._events()})
            WHERE event_date <= {end}
            ORDER BY patient_key, event_date, code"""
        if name == "decisions":
            return f"""
            SELECT * FROM (
                -- injections cleared after an allergic reaction (allergy review, product switch)
                SELECT e.patient_key, e.event_date + 7 + CAST(floor({u(122)} * 21) AS INTEGER)
                    AS event_date, 'rechallenge_cleared' AS code, 'clinician' AS decided_by,
                    'allergy review: rechallenge cleared' AS reason
                FROM ({self._events()}) AS e
                JOIN pt ON pt.n = e.patient_key
                JOIN kb_allergic AS k ON k.code = e.code
                WHERE {u(121)} < {self.share("v11", "allergy_cleared")}
                UNION ALL
                -- a clinician records that neurological symptoms stopped improving
                SELECT n, last_loading, 'neuro_loading_complete', 'clinician',
                    'no further neurological improvement'
                FROM pt
                WHERE neuro AND treated AND loading_pattern = 'loading_full'
                    AND {u(123)} < {self.share("v11", "neuro_loading_decision")}
            ) WHERE event_date <= {end}
            ORDER BY patient_key, event_date, code"""
        raise KeyError(name)

    def _events(self) -> str:
        """Adverse events of treated patients (any date): one drawn from the profile's shares in
        the first month, and a rash the day after the first dose for a few."""
        ae = self.p["adverse_events"]
        u = self.u
        picks = " ".join(
            f"WHEN {u(92)} < {sum(float(ae[c]) for c in list(ae)[: i + 1])} THEN '{code}'"
            for i, code in enumerate(ae)
        )
        return f"""
            SELECT n AS patient_key, start_date + 1 + CAST(floor({u(93)} * 30) AS INTEGER)
                AS event_date, CASE {picks} END AS code
            FROM pt WHERE treated AND {u(92)} < {sum(float(v) for v in ae.values())}
            UNION ALL
            SELECT n, start_date + 1, CASE WHEN {u(127)} < 0.5 THEN 'rash' ELSE 'itching' END
            FROM pt WHERE treated AND {u(129)} < {self.share("v11", "rash_after_dose")}"""

    def _reported_dose(self, alias: str) -> str:
        """Doses as written: 1 mg is sometimes charted as 1000 mcg."""
        mcg_share = self.share("treatment", "dose_in_mcg_units")
        mg = self.k.formulary.to_mcg(1, "mg")
        charted_mg = (
            f"({alias}.jurisdiction = 'GB' AND {alias}.dose_mcg >= {mg}"
            f" AND {self.u(35)} >= {mcg_share})"
        )
        return (
            f"CASE WHEN {charted_mg} THEN {alias}.dose_mcg / {mg} ELSE {alias}.dose_mcg END"
            f" AS reported_dose, CASE WHEN {charted_mg} THEN 'mg' ELSE 'mcg' END AS reported_unit"
        )

    def _canonical_case(self, column: str) -> str:
        whens = " ".join(f"WHEN '{a.code}' THEN '{a.canonical_unit}'" for a in self.k.analytes)
        return f"CASE {column} {whens} END"

    @staticmethod
    def _pick(codes: list[str], draw: str) -> str:
        whens = " ".join(
            f"WHEN {draw} < {(i + 1) / len(codes)} THEN '{c}'" for i, c in enumerate(codes[:-1])
        )
        return f"CASE {whens} ELSE '{codes[-1]}' END"
