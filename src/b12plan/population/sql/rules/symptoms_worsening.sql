-- SYMPTOMS_WORSENING (Seed): a symptom's latest status is "worsening" :worsening_after_days or
-- more after the first injection: re-evaluate schedule and diagnosis
-- (b12plan.core.rules.check_symptoms_worsening). Evidence: the latest such report.
WITH worse AS (
    SELECT
        s.patient_key, s.code, s.event_date, c.first_dose,
        ROW_NUMBER() OVER (PARTITION BY s.patient_key ORDER BY s.event_date DESC, s.code) AS pick
    FROM symptom_status AS s
    JOIN course AS c ON c.patient_key = s.patient_key
    WHERE s.status = 'worsening'
        AND DATE_DIFF('day', c.first_dose, s.event_date) >= :worsening_after_days
)
SELECT
    patient_key,
    event_date AS evidence_date,
    DATE_DIFF('day', first_dose, event_date) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    code AS evidence_note
FROM worse
WHERE pick = 1
