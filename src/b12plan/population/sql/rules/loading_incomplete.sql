-- LOADING_INCOMPLETE (BNF, NG239): a loading run of two or more doses moved to longer
-- intervals (or a maintenance order) before the protocol's loading doses were given, or, for the
-- neurological protocol, before symptoms stopped improving
-- (b12plan.core.rules.check_loading_incomplete).
SELECT
    patient_key,
    COALESCE(first_maintenance_dose, judged_on) AS evidence_date,
    loading_run AS evidence_days,
    CAST(loading_doses_minimum AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE loading_cut_short
