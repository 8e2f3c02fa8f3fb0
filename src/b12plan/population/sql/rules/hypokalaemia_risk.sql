-- HYPOKALAEMIA_RISK (US label; the Hb cut-off :severe_anaemia_hb_g_per_l is a local choice):
-- untreated or loading, with an indication, and haemoglobin at the start below the cut-off, with
-- no potassium result since the first injection (b12plan.core.rules.check_hypokalaemia_risk).
WITH potassium_checked AS (
    SELECT DISTINCT r.patient_key
    FROM results AS r
    JOIN course AS c ON c.patient_key = r.patient_key
    WHERE r.code = 'potassium' AND r.event_date >= c.first_dose
)
SELECT
    s.patient_key,
    s.first_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    s.hb_at_start AS evidence_value,
    s.phase AS evidence_note
FROM patient_state AS s
LEFT JOIN potassium_checked AS k ON k.patient_key = s.patient_key
WHERE s.phase IN ('untreated', 'loading') AND s.indicated
    AND s.hb_at_start < :severe_anaemia_hb_g_per_l
    AND k.patient_key IS NULL
