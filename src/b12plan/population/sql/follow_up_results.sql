-- In maintenance, the latest MMA, haemoglobin and MCV after the last loading dose, per patient
-- (b12plan.core.rules._results_after_loading, then facts.latest): of two results of one analyte
-- on one day the worse counts.
SELECT patient_key, code, event_date, value, reference_low, category
FROM (
    SELECT
        r.patient_key, r.code, r.event_date, r.value, r.reference_low, r.category,
        ROW_NUMBER() OVER (
            PARTITION BY r.patient_key, r.code ORDER BY r.event_date DESC, r.severity DESC
        ) AS rn
    FROM results AS r
    JOIN patient_state AS s ON s.patient_key = r.patient_key
    WHERE s.phase = 'maintenance' AND r.event_date > s.last_loading_dose
        AND r.code IN ('mma', 'haemoglobin', 'mcv')
) AS ranked
WHERE rn = 1
