-- INSUFFICIENT_DATA (contract v1): the deficiency status cannot be determined from the results,
-- or treatment is indicated but no protocol fits the product in use
-- (b12plan.core.rules.check_insufficient_data).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN deficiency = 'unknown' THEN 'deficiency unknown' ELSE 'no protocol fits' END
        AS evidence_note
FROM patient_state
WHERE deficiency = 'unknown' OR (indicated AND protocol_id IS NULL)
