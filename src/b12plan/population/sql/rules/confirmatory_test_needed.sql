-- CONFIRMATORY_TEST_NEEDED (NG239; contract v1.1 rule 5): untreated, deficiency only possible
-- with no MMA or active B12 result, no unresolved neurological symptom, no anaemia and no chronic
-- cause: test MMA or active B12 before injecting (no regimen for now)
-- (b12plan.core.rules.check_confirmatory_test_needed).
SELECT
    patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    deficiency AS evidence_note
FROM patient_state
WHERE confirmatory_test_needed
