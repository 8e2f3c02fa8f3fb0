-- POST_INJECTION_SAMPLE (NG239): a serum or active B12 taken after treatment began (the first
-- valid injection, or treatment given elsewhere since an earlier date) reflects the injections,
-- not body stores (b12plan.core.rules.check_post_injection_sample). Evidence: the latest such
-- sample.
WITH samples AS (
    SELECT
        r.patient_key, r.event_date, r.value, r.code, f.first_treatment,
        ROW_NUMBER() OVER (
            PARTITION BY r.patient_key ORDER BY r.event_date DESC, r.code, r.value DESC
        ) AS latest
    FROM results AS r
    JOIN patient_facts AS f ON f.patient_key = r.patient_key
    WHERE r.code IN ('b12_total', 'b12_active') AND r.event_date > f.first_treatment
)
SELECT
    patient_key,
    event_date AS evidence_date,
    DATE_DIFF('day', first_treatment, event_date) AS evidence_days,
    value AS evidence_value,
    code AS evidence_note
FROM samples
WHERE latest = 1
