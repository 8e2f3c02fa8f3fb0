-- LEVELS_FALLING_BETWEEN_DOSES (Seed; advisory, no guideline defines it): in maintenance, the
-- latest trough serum B12 (taken :trough_min_days or more after the dose before it) is deficient,
-- or troughs fell across :falling_trough_samples successive samples
-- (b12plan.core.rules.check_levels_falling_between_doses).
WITH maintained AS (
    SELECT patient_id FROM patient_state WHERE phase = 'maintenance'
), events AS (
    -- samples sort before a dose on the same day: a dose that day is not "before" the sample
    SELECT r.patient_id, r.event_date, 0 AS kind, r.value, r.category,
           CAST(NULL AS DATE) AS dose_date
    FROM results AS r
    JOIN maintained AS m ON m.patient_id = r.patient_id
    WHERE r.code = 'b12_total'
    UNION ALL
    SELECT d.patient_id, d.event_date, 1 AS kind, CAST(NULL AS DOUBLE) AS value,
           CAST(NULL AS VARCHAR) AS category, d.event_date AS dose_date
    FROM course_dose AS d
    JOIN maintained AS m ON m.patient_id = d.patient_id
), preceded AS (
    SELECT
        events.*,
        MAX(dose_date) OVER (
            PARTITION BY patient_id ORDER BY event_date, kind
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS dose_before
    FROM events
), troughs AS (
    SELECT
        patient_id, event_date, value, category,
        -- two samples on one day: the lower one counts as the later (it is not masked)
        ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY event_date DESC, value ASC)
            AS from_last,
        LEAD(value) OVER (PARTITION BY patient_id ORDER BY event_date DESC, value ASC)
            AS previous_value
    FROM preceded
    WHERE kind = 0 AND dose_before IS NOT NULL
        AND DATE_DIFF('day', dose_before, event_date) >= :trough_min_days
), judged AS (
    SELECT
        patient_id,
        MAX(CASE WHEN from_last = 1 THEN event_date END) AS last_date,
        MAX(CASE WHEN from_last = 1 THEN value END) AS last_value,
        MAX(CASE WHEN from_last = 1 AND category = 'deficient' THEN 1 ELSE 0 END)
            AS last_deficient,
        SUM(CASE WHEN from_last < :falling_trough_samples AND value < previous_value
                 THEN 1 ELSE 0 END) AS falls,
        COUNT(*) AS samples
    FROM troughs
    GROUP BY patient_id
)
SELECT
    patient_id,
    last_date AS evidence_date,
    CAST(samples AS BIGINT) AS evidence_days,
    last_value AS evidence_value,
    CASE WHEN last_deficient = 1 THEN 'latest trough deficient' ELSE 'troughs falling' END
        AS evidence_note
FROM judged
WHERE last_deficient = 1
    OR (samples >= :falling_trough_samples AND falls = :falling_trough_samples - 1)
