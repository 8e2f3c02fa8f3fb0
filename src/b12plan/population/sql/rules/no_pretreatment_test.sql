-- NO_PRETREATMENT_TEST (NG239; Silverstein 2019): injections given, but no B12, active B12 or
-- MMA result dated on or before the first injection
-- (b12plan.core.rules.check_no_pretreatment_test).
WITH tested AS (
    SELECT DISTINCT r.patient_key
    FROM results AS r
    JOIN course AS c ON c.patient_key = r.patient_key
    WHERE r.code IN ('b12_total', 'b12_active', 'mma') AND r.event_date <= c.first_dose
)
SELECT
    c.patient_key,
    c.first_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM course AS c
LEFT JOIN tested AS t ON t.patient_key = c.patient_key
WHERE t.patient_key IS NULL
