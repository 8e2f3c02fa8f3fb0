-- NO_FOLLOWUP_REVIEW (NG239, Seed): :followup_review_days or more since the first injection, and
-- no laboratory result or symptom assessment dated after it
-- (b12plan.core.rules.check_no_followup_review).
SELECT
    patient_key,
    first_dose AS evidence_date,
    DATE_DIFF('day', first_dose, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM patient_state
WHERE first_dose IS NOT NULL
    AND DATE_DIFF('day', first_dose, :as_of) >= :followup_review_days
    AND NOT COALESCE(last_result_date > first_dose, FALSE)
    AND NOT COALESCE(last_symptom_date > first_dose, FALSE)
