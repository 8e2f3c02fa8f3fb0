-- ACTIVE_DEFICIENCY_ON_MAINTENANCE (Seed, CKS): in maintenance, the latest result after loading
-- shows ongoing deficiency: MMA raised, or anaemia with MCV above its limit
-- (b12plan.core.rules.check_active_deficiency_on_maintenance). Anaemia as in patient_facts.
WITH latest AS (
    SELECT
        patient_key,
        MAX(CASE WHEN code = 'mma' AND category = 'raised' THEN event_date END) AS mma_raised_on,
        MAX(CASE WHEN code = 'mma' AND category = 'raised' THEN value END) AS mma_value,
        MAX(CASE WHEN code = 'haemoglobin' THEN value END) AS hb,
        MAX(CASE WHEN code = 'haemoglobin' THEN reference_low END) AS hb_reference_low,
        MAX(CASE WHEN code = 'haemoglobin' THEN event_date END) AS hb_date,
        MAX(CASE WHEN code = 'mcv' AND category = 'raised' THEN 1 ELSE 0 END) AS mcv_raised
    FROM follow_up_results
    GROUP BY patient_key
), judged AS (
    SELECT
        l.*,
        CASE
            WHEN l.hb IS NULL THEN FALSE
            WHEN l.hb_reference_low IS NOT NULL THEN l.hb < l.hb_reference_low
            WHEN s.pregnant THEN l.hb < :anaemia_pregnant_below
            WHEN s.sex = 'female' THEN l.hb < :anaemia_female_below
            WHEN s.sex = 'male' THEN l.hb < :anaemia_male_below
            ELSE l.hb < LEAST(:anaemia_female_below, :anaemia_male_below)
        END AS anaemic
    FROM latest AS l
    JOIN patient_state AS s ON s.patient_key = l.patient_key
)
SELECT
    patient_key,
    CASE WHEN mma_raised_on IS NOT NULL THEN mma_raised_on ELSE hb_date END AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CASE WHEN mma_raised_on IS NOT NULL THEN mma_value ELSE hb END AS evidence_value,
    CASE WHEN mma_raised_on IS NOT NULL THEN 'mma' ELSE 'haemoglobin' END AS evidence_note
FROM judged
WHERE mma_raised_on IS NOT NULL OR (mcv_raised = 1 AND anaemic)
