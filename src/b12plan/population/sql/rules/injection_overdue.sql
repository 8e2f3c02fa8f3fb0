-- INJECTION_OVERDUE (contract v1): :as_of is after the next dose's overdue date, which is
-- anchored on the last actual dose (b12plan.core.rules.check_injection_overdue).
SELECT
    patient_key,
    overdue_after AS evidence_date,
    DATE_DIFF('day', overdue_after, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE overdue_after IS NOT NULL AND :as_of > overdue_after
