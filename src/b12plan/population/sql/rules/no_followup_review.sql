-- NO_FOLLOWUP_REVIEW (NG239, Seed): :followup_review_days or more since the first injection, and
-- no laboratory result or symptom assessment dated after it
-- (b12plan.core.rules.check_no_followup_review).
WITH reviewed AS (
    SELECT r.patient_id
    FROM results AS r
    JOIN course AS c ON c.patient_id = r.patient_id
    WHERE r.event_date > c.first_dose
    UNION
    SELECT s.patient_id
    FROM symptoms AS s
    JOIN course AS c ON c.patient_id = s.patient_id
    WHERE s.event_date > c.first_dose AND s.event_date <= :as_of
)
SELECT
    c.patient_id,
    c.first_dose AS evidence_date,
    DATE_DIFF('day', c.first_dose, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM course AS c
LEFT JOIN reviewed AS r ON r.patient_id = c.patient_id
WHERE r.patient_id IS NULL
    AND DATE_DIFF('day', c.first_dose, :as_of) >= :followup_review_days
