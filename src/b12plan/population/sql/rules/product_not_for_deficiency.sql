-- PRODUCT_NOT_FOR_DEFICIENCY (Cyanokit, US label, formulary): the order or a dose is a product,
-- route and amount used for something else (hydroxocobalamin 5 g IV is a cyanide antidote), or a
-- route the formulary does not use for that product in deficiency
-- (b12plan.core.rules.check_product_not_for_deficiency). Evidence: the latest such item.
WITH flagged AS (
    SELECT
        patient_key, event_date, dose_mcg, route,
        ROW_NUMBER() OVER (
            PARTITION BY patient_key ORDER BY event_date DESC, item, dose_mcg
        ) AS latest
    FROM order_checks
    WHERE not_for_deficiency OR (known_product AND NOT listed_route)
)
SELECT
    patient_key,
    event_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    dose_mcg AS evidence_value,
    route AS evidence_note
FROM flagged
WHERE latest = 1
