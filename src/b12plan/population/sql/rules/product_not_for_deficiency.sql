-- PRODUCT_NOT_FOR_DEFICIENCY (Cyanokit, US label, formulary): the order or a dose is a product,
-- route and amount used for something else (hydroxocobalamin 5 g IV is a cyanide antidote), or a
-- route the formulary does not use for that product in deficiency
-- (b12plan.core.rules.check_product_not_for_deficiency).
WITH items AS (
    SELECT patient_id, rx_start AS event_date, rx_product AS product, rx_dose_mcg AS dose_mcg,
           rx_route AS route, 'prescription' AS item
    FROM patient_state
    WHERE rx_start IS NOT NULL
    UNION ALL
    SELECT patient_id, event_date, product, dose_mcg, route, 'administration' AS item
    FROM administrations
    WHERE event_date <= :as_of
), flagged AS (
    SELECT
        i.*,
        ROW_NUMBER() OVER (
            PARTITION BY i.patient_id ORDER BY i.event_date DESC, i.item, i.dose_mcg
        ) AS latest
    FROM items AS i
    JOIN kb_product AS p ON p.product = i.product
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = i.product AND n.route = i.route AND i.dose_mcg >= n.min_mcg
    LEFT JOIN kb_route AS r ON r.product = i.product AND r.route = i.route
    WHERE n.product IS NOT NULL OR r.product IS NULL
)
SELECT
    patient_id,
    event_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    dose_mcg AS evidence_value,
    route AS evidence_note
FROM flagged
WHERE latest = 1
