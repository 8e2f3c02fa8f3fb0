-- INSUFFICIENT_DATA (contract v1, v1.1): the deficiency status cannot be determined from the
-- results, treatment is indicated but no protocol fits the product in use, or loading was
-- completed elsewhere and the date of the last dose given there is not recorded
-- (b12plan.core.rules.check_insufficient_data).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN deficiency = 'unknown' THEN 'deficiency unknown'
         WHEN indicated AND protocol_id IS NULL THEN 'no protocol fits'
         ELSE 'last dose given elsewhere not recorded' END AS evidence_note
FROM patient_state
WHERE deficiency = 'unknown' OR (indicated AND protocol_id IS NULL)
    OR (prior_loading_completed AND first_dose IS NULL AND protocol_id IS NOT NULL)
