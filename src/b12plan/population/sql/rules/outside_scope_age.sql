-- OUTSIDE_SCOPE_AGE (NG239 covers people aged :minimum_age_years and over): younger on :as_of,
-- adult protocols do not apply (paediatric specialist, BNFC); no regimen
-- (b12plan.core.rules.check_outside_scope_age). Evidence: the birth date.
SELECT
    s.patient_key,
    p.birth_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CAST(NULL AS VARCHAR) AS evidence_note
FROM patient_state AS s
JOIN patients AS p ON p.patient_key = s.patient_key
WHERE s.out_of_scope
