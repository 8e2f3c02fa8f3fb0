-- DOSE_UNIT_SUSPECT (BNF, US label; the factor :implausible_factor is a local choice): the order or
-- a dose is that many times or more outside the plausible range for its product and route, e.g.
-- 1000 mg IM meant as 1000 mcg (b12plan.core.rules.check_dose_unit_suspect).
WITH items AS (
    SELECT patient_id, rx_start AS event_date, rx_product AS product, rx_dose_mcg AS dose_mcg,
           rx_route AS route, 'prescription' AS item
    FROM patient_state
    WHERE rx_start IS NOT NULL
    UNION ALL
    SELECT patient_id, event_date, product, dose_mcg, route, 'administration' AS item
    FROM administrations
    WHERE event_date <= :as_of
), suspect AS (
    SELECT
        i.*,
        ROW_NUMBER() OVER (
            PARTITION BY i.patient_id ORDER BY i.event_date DESC, i.item, i.dose_mcg
        ) AS latest
    FROM items AS i
    JOIN kb_route AS r ON r.product = i.product AND r.route = i.route
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = i.product AND n.route = i.route AND i.dose_mcg >= n.min_mcg
    WHERE n.product IS NULL
        AND (i.dose_mcg >= r.max_mcg * :implausible_factor
             OR i.dose_mcg <= r.min_mcg / :implausible_factor)
)
SELECT
    patient_id,
    event_date AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    dose_mcg AS evidence_value,
    item AS evidence_note
FROM suspect
WHERE latest = 1
