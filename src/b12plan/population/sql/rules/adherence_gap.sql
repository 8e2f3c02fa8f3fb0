-- ADHERENCE_GAP (Seed): after loading, a gap between consecutive doses longer than
-- :adherence_gap_factor maintenance intervals (b12plan.core.rules.check_adherence_gap).
-- Evidence: the longest such gap (its end date and length) and the limit in days. Not on an oral
-- regimen: past injection gaps are not judged against a daily tablet.
WITH moved AS (
    -- patients past loading, with the limit (few columns: the join's small side)
    SELECT patient_key, loading_run, :adherence_gap_factor * interval_days AS limit_days
    FROM patient_state
    WHERE interval_days IS NOT NULL AND moved_to_maintenance AND NOT oral_protocol
), gaps AS (
    SELECT
        d.patient_key, d.event_date, d.gap_days, s.limit_days,
        ROW_NUMBER() OVER (
            PARTITION BY d.patient_key ORDER BY d.gap_days DESC, d.event_date DESC
        ) AS longest,
        COUNT(*) OVER (PARTITION BY d.patient_key) AS gap_count
    FROM course_dose AS d
    JOIN moved AS s ON s.patient_key = d.patient_key
    WHERE d.dose_no > s.loading_run AND d.gap_days > s.limit_days
)
SELECT
    patient_key,
    event_date AS evidence_date,
    gap_days AS evidence_days,
    CAST(limit_days AS DOUBLE) AS evidence_value,
    CAST(gap_count AS VARCHAR) || ' gap(s)' AS evidence_note
FROM gaps
WHERE longest = 1
