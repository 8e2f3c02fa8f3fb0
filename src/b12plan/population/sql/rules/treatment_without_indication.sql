-- TREATMENT_WITHOUT_INDICATION (NG239; Silverstein 2019): injected although the pre-treatment
-- results make deficiency unlikely, with no neurological symptom, no chronic cause and no
-- macrocytic anaemia at the start, and no loading course completed elsewhere
-- (b12plan.core.rules.check_treatment_without_indication).
SELECT
    patient_key,
    first_dose AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    deficiency AS evidence_note
FROM patient_state
WHERE first_dose IS NOT NULL
    AND deficiency = 'unlikely'
    AND NOT neurological
    AND NOT chronic
    AND NOT prior_loading_completed
    AND NOT COALESCE(anaemic_at_start AND macrocytic_at_start, FALSE)
