-- RESULT_IMPLAUSIBLE (contract v1.1; the ranges are local choices): a result outside the
-- physiologically possible range for its analyte and reported unit (e.g. haemoglobin 12 g/L,
-- likely g/dL) is left out of every decision and listed here
-- (b12plan.core.rules.check_result_implausible). Evidence: the latest such result as reported.
WITH implausible AS (
    SELECT
        o.patient_key, o.event_date, o.code, o.reported_value,
        ROW_NUMBER() OVER (
            PARTITION BY o.patient_key ORDER BY o.event_date DESC, o.code, o.reported_value
        ) AS latest
    FROM observations AS o
    JOIN kb_plausible AS pl ON pl.code = o.code AND pl.unit = o.reported_unit
    WHERE o.event_date <= :as_of
        AND (o.reported_value < pl.low OR o.reported_value > pl.high)
)
SELECT
    patient_key,
    event_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    reported_value AS evidence_value,
    code AS evidence_note
FROM implausible
WHERE latest = 1
