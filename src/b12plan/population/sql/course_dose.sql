-- The injection course: one row per day with a valid injection known on :as_of (dose_validity:
-- oral doses, other uses, implausible doses and doses given during an allergic hold are not the
-- course; same-day doses count once), numbered by day, with the gap since the previous day.
-- Mirrors b12plan.core.course.build_course.
WITH ordered AS (
    SELECT
        patient_key, event_date,
        LAG(event_date) OVER (PARTITION BY patient_key ORDER BY event_date) AS previous_date,
        DENSE_RANK() OVER (PARTITION BY patient_key ORDER BY event_date) AS dose_no
    FROM dose_validity
    WHERE valid AND NOT oral
)
SELECT
    patient_key, event_date, dose_no,
    DATE_DIFF('day', previous_date, event_date) AS gap_days
FROM ordered
WHERE previous_date IS NULL OR previous_date < event_date
