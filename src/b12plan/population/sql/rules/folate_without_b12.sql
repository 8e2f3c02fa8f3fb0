-- FOLATE_WITHOUT_B12 (BNF, NG239, BSH): folic acid current while B12 deficiency is confirmed or
-- possible, and no B12 has been given (no administration of any kind, no oral B12)
-- (b12plan.core.rules.check_folate_without_b12).
WITH b12_given AS (
    SELECT patient_id FROM administrations WHERE event_date <= :as_of
    UNION
    SELECT patient_id FROM medications WHERE code = 'oral_b12' AND start_date <= :as_of
), folic AS (
    SELECT patient_id, MIN(start_date) AS folic_start
    FROM medications
    WHERE code = 'folic_acid' AND start_date <= :as_of
        AND (end_date IS NULL OR end_date > :as_of)
    GROUP BY patient_id
)
SELECT
    s.patient_id,
    f.folic_start AS evidence_date,
    DATE_DIFF('day', f.folic_start, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    s.deficiency AS evidence_note
FROM patient_state AS s
JOIN folic AS f ON f.patient_id = s.patient_id
LEFT JOIN b12_given AS g ON g.patient_id = s.patient_id
WHERE s.deficiency IN ('confirmed', 'possible') AND g.patient_id IS NULL
