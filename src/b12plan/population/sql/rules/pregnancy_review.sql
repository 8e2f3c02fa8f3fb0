-- PREGNANCY_REVIEW (NG239): pregnant or breastfeeding with deficiency confirmed or possible:
-- active B12 is the first test, specialist advice, continue folic acid, review at 1 month
-- (b12plan.core.rules.check_pregnancy_review).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    deficiency AS evidence_note
FROM patient_state
WHERE pregnant_or_breastfeeding AND deficiency IN ('confirmed', 'possible')
