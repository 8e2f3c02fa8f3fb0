-- ORAL_MAINTENANCE_OPTION (CKS, BNF, NG239): a dietary-only protocol and loading complete: oral
-- maintenance is an option (b12plan.core.rules.check_oral_maintenance_option).
SELECT
    patient_key,
    last_loading_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE dietary_rule = 'required' AND loading_complete
