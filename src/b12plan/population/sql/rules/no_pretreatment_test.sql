-- NO_PRETREATMENT_TEST (NG239; Silverstein 2019): injections given, but no B12, active B12 or
-- MMA result dated on or before the first valid injection; silent for a patient whose loading
-- was completed elsewhere (b12plan.core.rules.check_no_pretreatment_test).
WITH tested AS (
    SELECT DISTINCT r.patient_key
    FROM results AS r
    JOIN course AS c ON c.patient_key = r.patient_key
    WHERE r.code IN ('b12_total', 'b12_active', 'mma') AND r.event_date <= c.first_dose
)
SELECT
    f.patient_key,
    f.first_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM patient_facts AS f
LEFT JOIN tested AS t ON t.patient_key = f.patient_key
WHERE f.first_dose IS NOT NULL AND NOT f.prior_loading_completed AND t.patient_key IS NULL
