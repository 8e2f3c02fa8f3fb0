-- PRODUCT_STRENGTH_MISMATCH (Seed, BNF): products and strengths are not interchangeable. A dose
-- given during the current order differs from it in product or amount; or the order switches
-- product or strength from the last injection and no dose has been given under it yet
-- (b12plan.core.rules.check_product_strength_mismatch).
WITH rx AS (
    SELECT patient_id, rx_product, rx_dose_mcg, rx_start, rx_end
    FROM patient_state
    WHERE rx_start IS NOT NULL
), during AS (
    SELECT
        a.patient_id,
        COUNT(*) AS given,
        SUM(CASE WHEN a.product <> rx.rx_product OR a.dose_mcg <> rx.rx_dose_mcg
                 THEN 1 ELSE 0 END) AS differing,
        MAX(CASE WHEN a.product <> rx.rx_product OR a.dose_mcg <> rx.rx_dose_mcg
                 THEN a.event_date END) AS last_differing
    FROM administrations AS a
    JOIN rx ON rx.patient_id = a.patient_id
    WHERE a.event_date <= :as_of
        AND a.event_date >= rx.rx_start
        AND (rx.rx_end IS NULL OR a.event_date <= rx.rx_end)
    GROUP BY a.patient_id
), before AS (
    SELECT
        d.patient_id, d.event_date, d.product, d.dose_mcg,
        ROW_NUMBER() OVER (PARTITION BY d.patient_id ORDER BY d.event_date DESC) AS rn
    FROM course_dose AS d
    JOIN rx ON rx.patient_id = d.patient_id
    WHERE d.event_date < rx.rx_start
)
SELECT
    rx.patient_id,
    CASE WHEN du.differing > 0 THEN du.last_differing ELSE b.event_date END AS evidence_date,
    CAST(COALESCE(du.differing, 0) AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN du.differing > 0 THEN 'dose differs from the order'
         ELSE 'order switches from the last injection' END AS evidence_note
FROM rx
LEFT JOIN during AS du ON du.patient_id = rx.patient_id
LEFT JOIN before AS b ON b.patient_id = rx.patient_id AND b.rn = 1
WHERE du.differing > 0
    OR (du.patient_id IS NULL AND b.patient_id IS NOT NULL
        AND (b.product <> rx.rx_product OR b.dose_mcg <> rx.rx_dose_mcg))
