-- FOLATE_WITHOUT_B12 (BNF, NG239, BSH): folic acid current while B12 deficiency is confirmed or
-- possible, and no B12 has been given (no administration of any kind, no oral B12)
-- (b12plan.core.rules.check_folate_without_b12).
WITH folic AS (
    SELECT m.patient_key, MIN(m.start_date) AS folic_start
    FROM medications AS m
    JOIN patient_state AS s ON s.patient_key = m.patient_key
    WHERE m.code = 'folic_acid' AND m.start_date <= :as_of
        AND (m.end_date IS NULL OR m.end_date > :as_of)
        AND s.deficiency IN ('confirmed', 'possible')
    GROUP BY m.patient_key
), b12_given AS (
    SELECT a.patient_key
    FROM administrations AS a
    JOIN folic AS f ON f.patient_key = a.patient_key
    WHERE a.event_date <= :as_of
    UNION
    SELECT m.patient_key
    FROM medications AS m
    WHERE m.code = 'oral_b12' AND m.start_date <= :as_of
)
SELECT
    s.patient_key,
    f.folic_start AS evidence_date,
    DATE_DIFF('day', f.folic_start, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    s.deficiency AS evidence_note
FROM patient_state AS s
JOIN folic AS f ON f.patient_key = s.patient_key
LEFT JOIN b12_given AS g ON g.patient_key = s.patient_key
WHERE g.patient_key IS NULL
