-- MAINTENANCE_APPROPRIATE (Seed, NG239): maintenance-interval dosing fits. In maintenance after a
-- complete loading course, on time, at an interval inside the protocol's range; follow-up MMA,
-- haemoglobin or MCV after loading, the latest MMA and MCV not raised and the latest haemoglobin
-- surely not anaemic; no symptom's latest report present or worsening; troughs not falling and
-- no adherence gap (b12plan.core.rules.check_maintenance_appropriate, _maintenance_fits).
-- Evidence: the interval in use.
WITH latest AS (
    SELECT
        patient_key,
        MAX(CASE WHEN code IN ('mma', 'mcv') AND category = 'raised' THEN 1 ELSE 0 END)
            AS marker_raised,
        MAX(CASE WHEN code = 'haemoglobin' THEN value END) AS hb,
        MAX(CASE WHEN code = 'haemoglobin' THEN reference_low END) AS hb_reference_low
    FROM follow_up_results
    GROUP BY patient_key
), symptomatic AS (
    SELECT DISTINCT patient_key
    FROM symptom_status
    WHERE status IN ('present', 'worsening')
)
SELECT
    s.patient_key,
    CAST(NULL AS DATE) AS evidence_date,
    CAST(s.interval_days AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    s.protocol_id AS evidence_note
FROM patient_state AS s
JOIN latest AS l ON l.patient_key = s.patient_key
WHERE s.phase = 'maintenance'
    AND s.loading_complete
    AND s.moved_to_maintenance
    AND NOT s.on_hold
    AND NOT s.oral_protocol
    AND s.protocol_id IS NOT NULL
    AND NOT s.interval_limited
    AND NOT COALESCE(:as_of > s.overdue_after, FALSE)
    AND l.marker_raised = 0
    AND (
        l.hb IS NULL
        OR CASE
            -- surely not anaemic: the laboratory's own limit, else WHO's (an unknown sex must
            -- clear both sexes' cut-offs)
            WHEN l.hb_reference_low IS NOT NULL THEN l.hb >= l.hb_reference_low
            WHEN s.pregnant THEN l.hb >= :anaemia_pregnant_below
            WHEN s.sex = 'female' THEN l.hb >= :anaemia_female_below
            WHEN s.sex = 'male' THEN l.hb >= :anaemia_male_below
            ELSE l.hb >= GREATEST(:anaemia_female_below, :anaemia_male_below)
        END
    )
    AND NOT EXISTS (SELECT 1 FROM symptomatic AS x WHERE x.patient_key = s.patient_key)
    AND NOT EXISTS (
        SELECT 1 FROM rule_levels_falling_between_doses AS x WHERE x.patient_key = s.patient_key
    )
    AND NOT EXISTS (SELECT 1 FROM rule_adherence_gap AS x WHERE x.patient_key = s.patient_key)
