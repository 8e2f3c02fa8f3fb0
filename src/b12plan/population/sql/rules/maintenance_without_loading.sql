-- MAINTENANCE_WITHOUT_LOADING (Seed, NG239, BNF): deficiency not unlikely (or a chronic cause),
-- and treatment began at a maintenance interval: the second dose came :maintenance_gap_days or
-- more after the first, or a maintenance order stands with at most one dose given
-- (b12plan.core.rules.check_maintenance_without_loading).
SELECT
    patient_key,
    CASE WHEN doses >= 2 AND loading_run = 1 THEN first_dose ELSE rx_start END AS evidence_date,
    CASE WHEN doses >= 2 AND loading_run = 1
         THEN DATE_DIFF('day', first_dose, first_maintenance_dose)
         ELSE rx_interval_days END AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN doses >= 2 AND loading_run = 1 THEN 'second dose' ELSE 'maintenance order' END
        AS evidence_note
FROM patient_state
WHERE maintenance_without_loading
