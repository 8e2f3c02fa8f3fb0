-- PRODUCT_STRENGTH_MISMATCH (Seed, BNF): products and strengths are not interchangeable. A dose
-- given during the current order differs from it in product or amount; or the order switches
-- product or strength from the last injection and no dose has been given under it yet
-- (b12plan.core.rules.check_product_strength_mismatch).
WITH rx AS (
    SELECT patient_key, rx_product, rx_dose_mcg, rx_start, rx_end
    FROM patient_state
    WHERE rx_start IS NOT NULL
), during AS (
    SELECT
        a.patient_key,
        SUM(CASE WHEN a.product <> rx.rx_product OR a.dose_mcg <> rx.rx_dose_mcg
                 THEN 1 ELSE 0 END) AS differing,
        MAX(CASE WHEN a.product <> rx.rx_product OR a.dose_mcg <> rx.rx_dose_mcg
                 THEN a.event_date END) AS last_differing
    FROM administrations AS a
    JOIN rx ON rx.patient_key = a.patient_key
    WHERE a.event_date <= :as_of
        AND a.event_date >= rx.rx_start
        AND (rx.rx_end IS NULL OR a.event_date <= rx.rx_end)
    GROUP BY a.patient_key
), not_yet_given AS (
    SELECT rx.*
    FROM rx
    LEFT JOIN during AS du ON du.patient_key = rx.patient_key
    WHERE du.patient_key IS NULL
), last_before AS (
    SELECT d.patient_key, MAX(d.event_date) AS event_date
    FROM course_dose AS d
    JOIN not_yet_given AS n ON n.patient_key = d.patient_key
    WHERE d.event_date < n.rx_start
    GROUP BY d.patient_key
), last_injection AS (
    -- the dose that counted that day (a valid injection day: no hold): the first injection in
    -- order that is for deficiency and plausible (the rest are same-day duplicates)
    SELECT
        a.patient_key, a.event_date, a.product, a.dose_mcg,
        ROW_NUMBER() OVER (
            PARTITION BY a.patient_key ORDER BY a.product, a.dose_mcg, a.route
        ) AS rn
    FROM administrations AS a
    JOIN last_before AS l ON l.patient_key = a.patient_key AND l.event_date = a.event_date
    JOIN kb_route AS r ON r.product = a.product AND r.route = a.route
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
    WHERE a.route <> 'oral' AND n.product IS NULL
        AND a.dose_mcg < r.max_mcg * :implausible_factor
        AND a.dose_mcg > r.min_mcg / :implausible_factor
), switched AS (
    SELECT n.patient_key, d.event_date
    FROM not_yet_given AS n
    JOIN last_injection AS d ON d.patient_key = n.patient_key AND d.rn = 1
    WHERE d.product <> n.rx_product OR d.dose_mcg <> n.rx_dose_mcg
)
SELECT
    patient_key,
    last_differing AS evidence_date,
    CAST(differing AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    'dose differs from the order' AS evidence_note
FROM during
WHERE differing > 0
UNION ALL
SELECT
    patient_key,
    event_date AS evidence_date,
    CAST(0 AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    'order switches from the last injection' AS evidence_note
FROM switched
