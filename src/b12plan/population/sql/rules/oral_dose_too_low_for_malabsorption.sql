-- ORAL_DOSE_TOO_LOW_FOR_MALABSORPTION (NG239): an oral regimen below :oral_malabsorption_min_mcg
-- daily with a malabsorptive or autoimmune cause
-- (b12plan.core.rules.check_oral_dose_too_low_for_malabsorption). Evidence: the dose in use.
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    dose_in_use_mcg AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE oral_protocol AND malabsorptive AND dose_in_use_mcg < :oral_malabsorption_min_mcg
