-- NEURO_REVIEW_DUE (contract v1.1 rule 1; BNF, NG239): during neurological loading every
-- neurological symptom is now stable or resolved and a patient or carer reported at least one of
-- them so: a patient's or carer's report never ends loading, a clinician decides
-- (b12plan.core.rules.check_neuro_review_due).
SELECT
    patient_key,
    first_dose AS evidence_date,
    CAST(loading_run AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE neuro_review_due
