-- The injection course: one row per day with an injection known on :as_of, numbered by day, with
-- the gap since the previous day. Mirrors b12plan.core.course: oral doses and non-deficiency uses
-- (e.g. the cyanide antidote) are not the course, and same-day doses count once.
WITH injection AS (
    SELECT a.patient_key, a.event_date
    FROM administrations AS a
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
    WHERE a.event_date <= :as_of AND a.route <> 'oral' AND n.product IS NULL
), ordered AS (
    SELECT
        patient_key, event_date,
        LAG(event_date) OVER (PARTITION BY patient_key ORDER BY event_date) AS previous_date,
        DENSE_RANK() OVER (PARTITION BY patient_key ORDER BY event_date) AS dose_no
    FROM injection
)
SELECT
    patient_key, event_date, dose_no,
    DATE_DIFF('day', previous_date, event_date) AS gap_days
FROM ordered
WHERE previous_date IS NULL OR previous_date < event_date
