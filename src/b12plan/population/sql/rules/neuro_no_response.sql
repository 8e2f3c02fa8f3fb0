-- NEURO_NO_RESPONSE (contract v1.1; NG239): neurological loading with no improvement recorded
-- since the first loading dose, for :neuro_no_response_days or more or with a clinician's
-- "stable" as a symptom's current status: re-evaluate the diagnosis, seek specialist advice;
-- loading continues (b12plan.core.rules.check_neuro_no_response).
SELECT
    patient_key,
    first_dose AS evidence_date,
    DATE_DIFF('day', first_dose, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN neuro_clinician_stable THEN 'clinician stable' ELSE 'no improvement' END
        AS evidence_note
FROM patient_state
WHERE neuro_no_response
