-- Each symptom's latest report on :as_of, per patient (b12plan.core.facts.latest_symptom_status):
-- on a day with two reports of one symptom, the one core keeps last (statuses in text order).
SELECT patient_key, code, event_date, status
FROM (
    SELECT
        patient_key, code, event_date, status,
        ROW_NUMBER() OVER (
            PARTITION BY patient_key, code ORDER BY event_date DESC, status DESC
        ) AS rn
    FROM symptoms
    WHERE event_date <= :as_of
) AS ranked
WHERE rn = 1
