-- Oral doses known on :as_of, judged as in dose_validity (b12plan.core.validity.check_doses):
-- valid unless the product has no oral deficiency range or the dose is :implausible_factor times
-- outside it. Read apart from the injections because few doses are oral.
SELECT
    a.patient_key, a.event_date, a.product, a.dose_mcg,
    r.product IS NOT NULL
        AND a.dose_mcg < r.max_mcg * :implausible_factor
        AND a.dose_mcg > r.min_mcg / :implausible_factor AS valid
FROM administrations AS a
LEFT JOIN kb_route AS r ON r.product = a.product AND r.route = a.route
WHERE a.route = 'oral' AND a.event_date <= :as_of
