-- One row per treated patient: the course's first and last dose, the loading run, the last
-- loading and first maintenance dose, and the product and dose of the latest injection
-- (b12plan.core.course.Course).
SELECT
    patient_id,
    MAX(doses) AS doses,
    MAX(loading_run) AS loading_run,
    MIN(event_date) AS first_dose,
    MAX(event_date) AS last_dose,
    MAX(CASE WHEN dose_no = loading_run THEN event_date END) AS last_loading_dose,
    MAX(CASE WHEN dose_no = loading_run + 1 THEN event_date END) AS first_maintenance_dose,
    MAX(CASE WHEN dose_no = doses THEN product END) AS last_product,
    MAX(CASE WHEN dose_no = doses THEN dose_mcg END) AS last_dose_mcg
FROM course_dose
GROUP BY patient_id
