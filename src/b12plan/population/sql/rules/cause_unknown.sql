-- CAUSE_UNKNOWN (NG239): deficiency confirmed or possible and no cause recorded (or only
-- "unknown"), and no risk-factor medication (metformin, PPI, nitrous oxide) recorded either: the
-- cause decides whether treatment is lifelong (b12plan.core.rules.check_cause_unknown).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    deficiency AS evidence_note
FROM patient_state
WHERE deficiency IN ('confirmed', 'possible') AND NOT known_cause
    AND NOT risk_factor_medication
