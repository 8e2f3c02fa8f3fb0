-- Orders the formulary questions: the current prescription and every administration known on
-- :as_of that is a non-deficiency use (e.g. the cyanide antidote), uses a route the formulary
-- does not list for its product, or is :implausible_factor times or more outside the route's
-- plausible doses (b12plan.core.rules.check_product_not_for_deficiency, check_dose_unit_suspect).
WITH items AS (
    SELECT patient_key, rx_start AS event_date, rx_product AS product, rx_dose_mcg AS dose_mcg,
           rx_route AS route, 'prescription' AS item
    FROM patient_facts
    WHERE rx_start IS NOT NULL
    UNION ALL
    SELECT patient_key, event_date, product, dose_mcg, route, 'administration' AS item
    FROM administrations
    WHERE event_date <= :as_of
), judged AS (
    SELECT
        i.*,
        n.product IS NOT NULL AS not_for_deficiency,
        p.product IS NOT NULL AS known_product,
        r.product IS NOT NULL AS listed_route,
        COALESCE(r.product IS NOT NULL
                 AND (i.dose_mcg >= r.max_mcg * :implausible_factor
                      OR i.dose_mcg <= r.min_mcg / :implausible_factor), FALSE) AS implausible
    FROM items AS i
    LEFT JOIN kb_product AS p ON p.product = i.product
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = i.product AND n.route = i.route AND i.dose_mcg >= n.min_mcg
    LEFT JOIN kb_route AS r ON r.product = i.product AND r.route = i.route
)
SELECT *
FROM judged
WHERE not_for_deficiency OR (known_product AND NOT listed_route) OR implausible
