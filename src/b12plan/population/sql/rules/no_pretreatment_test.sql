-- NO_PRETREATMENT_TEST (NG239; Silverstein 2019): injections given, but no B12, active B12 or
-- MMA result dated on or before the first injection
-- (b12plan.core.rules.check_no_pretreatment_test).
WITH tested AS (
    SELECT DISTINCT r.patient_id
    FROM results AS r
    JOIN course AS c ON c.patient_id = r.patient_id
    WHERE r.code IN ('b12_total', 'b12_active', 'mma') AND r.event_date <= c.first_dose
)
SELECT
    c.patient_id,
    c.first_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM course AS c
LEFT JOIN tested AS t ON t.patient_id = c.patient_id
WHERE t.patient_id IS NULL
