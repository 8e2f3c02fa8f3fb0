-- The injection course: one row per day with an injection known on :as_of, numbered, with the
-- gap since the previous one and where the loading run ends. Mirrors b12plan.core.course:
-- oral doses and non-deficiency uses (e.g. the cyanide antidote) are not the course; same-day
-- doses count once; the loading run ends at the first gap of :maintenance_gap_days or more.
WITH injection AS (
    SELECT a.patient_id, a.event_date, a.product, a.dose_mcg
    FROM administrations AS a
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
    WHERE a.event_date <= :as_of AND a.route <> 'oral' AND n.product IS NULL
), per_day AS (
    SELECT patient_id, event_date, MAX(product) AS product, MAX(dose_mcg) AS dose_mcg
    FROM injection
    GROUP BY patient_id, event_date
), numbered AS (
    SELECT
        patient_id, event_date, product, dose_mcg,
        ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY event_date) AS dose_no,
        DATE_DIFF('day', LAG(event_date) OVER (PARTITION BY patient_id ORDER BY event_date),
                  event_date) AS gap_days
    FROM per_day
), marked AS (
    SELECT
        numbered.*,
        COUNT(*) OVER (PARTITION BY patient_id) AS doses,
        MIN(CASE WHEN gap_days >= :maintenance_gap_days THEN dose_no END)
            OVER (PARTITION BY patient_id) AS first_gap_no
    FROM numbered
)
SELECT
    patient_id, event_date, product, dose_mcg, dose_no, gap_days, doses,
    COALESCE(first_gap_no - 1, doses) AS loading_run
FROM marked
