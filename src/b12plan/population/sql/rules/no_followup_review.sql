-- NO_FOLLOWUP_REVIEW (NG239, Seed; contract v1.1 rule 8): :followup_review_days or more since the
-- first injection, and no follow-up laboratory result (the analytes marked follow_up in the
-- knowledge base) dated after it: symptom records alone are not follow-up testing
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
    AND NOT COALESCE(last_follow_up_date > first_dose, FALSE)
