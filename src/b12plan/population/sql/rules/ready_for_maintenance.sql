-- READY_FOR_MAINTENANCE (BNF, NG239): loading is complete and no maintenance-length gap has
-- followed yet: the next dose is at the maintenance interval
-- (b12plan.core.rules.check_ready_for_maintenance).
SELECT
    patient_key,
    last_dose AS evidence_date,
    CAST(loading_run AS BIGINT) AS evidence_days,
    CAST(interval_days AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE loading_complete AND loading_run = doses AND phase <> 'stopped'
    AND overdue_after IS NOT NULL  -- a next dose is planned (not on hold, not oral)
    AND interval_days IS NOT NULL
