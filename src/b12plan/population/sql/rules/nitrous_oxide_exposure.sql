-- NITROUS_OXIDE_EXPOSURE (NG239): nitrous oxide use (a cause or a medication) with a neurological
-- symptom not resolved: treat now whatever the total B12, test homocysteine or MMA, advise
-- stopping, seek specialist advice (b12plan.core.rules.check_nitrous_oxide_exposure).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    deficiency AS evidence_note
FROM patient_state
WHERE nitrous_oxide AND neuro_unresolved
