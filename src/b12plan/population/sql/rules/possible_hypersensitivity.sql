-- POSSIBLE_HYPERSENSITIVITY (US label): a rash or itching dated :hypersensitivity_window_days
-- days or fewer after an injection (any parenteral administration record)
-- (b12plan.core.rules.check_possible_hypersensitivity). Evidence: the latest such event and the
-- days after the injection before it.
WITH skin AS (
    SELECT e.patient_key, e.event_date, e.code
    FROM adverse_events AS e
    WHERE e.code IN ('rash', 'itching') AND e.event_date <= :as_of
), matched AS (
    SELECT
        s.patient_key, s.event_date, s.code,
        MIN(DATE_DIFF('day', a.event_date, s.event_date)) AS days_after
    FROM skin AS s
    JOIN administrations AS a
        ON a.patient_key = s.patient_key AND a.route <> 'oral'
        AND a.event_date <= s.event_date
        AND DATE_DIFF('day', a.event_date, s.event_date) <= :hypersensitivity_window_days
    GROUP BY s.patient_key, s.event_date, s.code
), ranked AS (
    SELECT
        m.*,
        ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY event_date DESC, code) AS latest
    FROM matched AS m
)
SELECT
    patient_key,
    event_date AS evidence_date,
    CAST(days_after AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    code AS evidence_note
FROM ranked
WHERE latest = 1
