-- DOSE_UNIT_SUSPECT (BNF, US label; the factor is a local choice): the order or a dose is
-- :implausible_factor times or more outside the plausible range for its product and route, e.g.
-- 1000 mg IM meant as 1000 mcg (b12plan.core.rules.check_dose_unit_suspect).
-- Evidence: the latest such item.
WITH suspect AS (
    SELECT
        patient_key, event_date, dose_mcg, item,
        ROW_NUMBER() OVER (
            PARTITION BY patient_key ORDER BY event_date DESC, item, dose_mcg
        ) AS latest
    FROM order_checks
    WHERE implausible AND NOT not_for_deficiency
)
SELECT
    patient_key,
    event_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    dose_mcg AS evidence_value,
    item AS evidence_note
FROM suspect
WHERE latest = 1
