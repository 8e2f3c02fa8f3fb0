-- LEVELS_FALLING_BETWEEN_DOSES (Seed; advisory, no guideline defines it): in maintenance, the
-- latest trough serum B12 (taken :trough_min_days or more after the dose before it) is deficient,
-- or troughs fell across :falling_trough_samples successive samples
-- (b12plan.core.rules.check_levels_falling_between_doses).
WITH b12_samples AS (
    SELECT r.patient_key, r.event_date, r.value, r.severity, r.category
    FROM results AS r
    JOIN patient_state AS s ON s.patient_key = r.patient_key
    WHERE s.phase = 'maintenance' AND r.code = 'b12_total' AND r.event_date > s.first_dose
), troughs AS (
    -- a trough: the dose before the sample (a dose that day is not "before") was given
    -- :trough_min_days or more earlier, i.e. no dose in the days just before it
    SELECT
        patient_key, event_date, value, category,
        -- two samples on one day: the worse (lower) one counts as the later
        ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY event_date DESC, severity DESC)
            AS from_last,
        LEAD(value) OVER (PARTITION BY patient_key ORDER BY event_date DESC, severity DESC)
            AS previous_value
    FROM b12_samples AS s
    WHERE NOT EXISTS (
        SELECT 1
        FROM course_dose AS d
        WHERE d.patient_key = s.patient_key
            AND d.event_date < s.event_date
            AND DATE_DIFF('day', d.event_date, s.event_date) < :trough_min_days
    )
), judged AS (
    SELECT
        patient_key,
        MAX(CASE WHEN from_last = 1 THEN event_date END) AS last_date,
        MAX(CASE WHEN from_last = 1 THEN value END) AS last_value,
        MAX(CASE WHEN from_last = 1 AND category = 'deficient' THEN 1 ELSE 0 END)
            AS last_deficient,
        SUM(CASE WHEN from_last < :falling_trough_samples AND value < previous_value
                 THEN 1 ELSE 0 END) AS falls,
        COUNT(*) AS samples
    FROM troughs
    GROUP BY patient_key
)
SELECT
    patient_key,
    last_date AS evidence_date,
    CAST(samples AS BIGINT) AS evidence_days,
    last_value AS evidence_value,
    CASE WHEN last_deficient = 1 THEN 'latest trough deficient' ELSE 'troughs falling' END
        AS evidence_note
FROM judged
WHERE last_deficient = 1
    OR (samples >= :falling_trough_samples AND falls = :falling_trough_samples - 1)
