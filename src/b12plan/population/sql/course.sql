-- One row per treated patient (b12plan.core.course.Course): first and last dose, the loading run
-- (doses before the first gap of :maintenance_gap_days or more), the last loading dose and the
-- first maintenance dose.
SELECT
    patient_key,
    COUNT(*) AS doses,
    COALESCE(MIN(CASE WHEN gap_days >= :maintenance_gap_days THEN dose_no END) - 1, COUNT(*))
        AS loading_run,
    MIN(event_date) AS first_dose,
    MAX(event_date) AS last_dose,
    COALESCE(
        MIN(CASE WHEN gap_days >= :maintenance_gap_days
                 THEN event_date - CAST(gap_days AS INTEGER) END),
        MAX(event_date)
    ) AS last_loading_dose,
    MIN(CASE WHEN gap_days >= :maintenance_gap_days THEN event_date END)
        AS first_maintenance_dose
FROM course_dose
GROUP BY patient_key
