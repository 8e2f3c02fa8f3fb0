-- FOLATE_WITHOUT_B12 (BNF, NG239, BSH; contract v1.1 rule 3): folic acid current while B12
-- deficiency is confirmed, possible or not known (never tested), and no B12 treatment has
-- started: no valid B12 dose (any route) since :folate_b12_lookback_factor maintenance intervals
-- before the folic acid started (the chosen injection protocol's interval, else the
-- jurisdiction's default injection protocol's), and no oral B12 medication since then
-- (b12plan.core.rules.check_folate_without_b12).
WITH folic AS (
    SELECT m.patient_key, MIN(m.start_date) AS folic_start
    FROM medications AS m
    WHERE m.code = 'folic_acid' AND m.start_date <= :as_of
        AND (m.end_date IS NULL OR m.end_date > :as_of)
    GROUP BY m.patient_key
), judged AS (
    SELECT
        s.patient_key, s.deficiency, f.folic_start,
        f.folic_start - CAST(FLOOR(:folate_b12_lookback_factor * CASE
            WHEN s.interval_days IS NOT NULL AND NOT s.oral_protocol THEN s.interval_days
            ELSE d.maintenance_due_days END) AS INTEGER) AS window_start
    FROM folic AS f
    JOIN patient_state AS s ON s.patient_key = f.patient_key
    LEFT JOIN kb_protocol AS d
        ON d.jurisdiction = s.jurisdiction AND d.jurisdiction_default AND d.kind = 'injection'
    WHERE s.deficiency IN ('confirmed', 'possible', 'unknown')
), b12_given AS (
    -- a valid injection day, or a valid oral dose
    SELECT DISTINCT j.patient_key
    FROM judged AS j
    JOIN course_dose AS d ON d.patient_key = j.patient_key
    WHERE d.event_date >= j.window_start
    UNION
    SELECT DISTINCT j.patient_key
    FROM judged AS j
    JOIN oral_doses AS o ON o.patient_key = j.patient_key
    WHERE o.valid AND o.event_date >= j.window_start
    UNION
    SELECT m.patient_key
    FROM medications AS m
    JOIN judged AS j ON j.patient_key = m.patient_key
    WHERE m.code = 'oral_b12' AND m.start_date <= :as_of
        AND (m.end_date IS NULL OR m.end_date >= j.window_start)
)
SELECT
    j.patient_key,
    j.folic_start AS evidence_date,
    DATE_DIFF('day', j.folic_start, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    j.deficiency AS evidence_note
FROM judged AS j
LEFT JOIN b12_given AS g ON g.patient_key = j.patient_key
WHERE g.patient_key IS NULL
