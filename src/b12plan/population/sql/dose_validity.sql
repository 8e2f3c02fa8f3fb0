-- Every administration known on :as_of, judged (b12plan.core.validity.check_doses): a dose for
-- another use (the cyanide antidote) or by a route with no deficiency range for the product is
-- not for deficiency; a dose :implausible_factor times outside the route's range is implausible
-- (a mcg/mg slip); an off-label route still counts; an injection given after an allergic reaction
-- (dated before the dose) with no rechallenge_cleared decision between them was given during the
-- hold. ``valid``: none of these. Of the valid doses of one day and kind only the first in order
-- counts (the rest are same-day duplicates); every reader takes valid doses by day (the course's
-- dates, "a valid dose since"), and the one that needs the dose that counted on a day
-- (PRODUCT_STRENGTH_MISMATCH) ranks that day's doses itself, so duplicates are not marked here.
WITH judged AS (
    SELECT
        a.patient_key, a.event_date, a.product, a.dose_mcg, a.route,
        a.route = 'oral' AS oral,
        n.product IS NOT NULL AS other_use,
        n.product IS NULL AND r.product IS NOT NULL
            AND a.dose_mcg < r.max_mcg * :implausible_factor
            AND a.dose_mcg > r.min_mcg / :implausible_factor AS for_deficiency
    FROM administrations AS a
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
    LEFT JOIN kb_route AS r ON r.product = a.product AND r.route = a.route
    WHERE a.event_date <= :as_of
), allergic AS (
    -- each allergic reaction with the first clearance on or after it (NULL: still on hold)
    SELECT
        e.patient_key, e.event_date,
        MIN(d.event_date) AS cleared_on
    FROM adverse_events AS e
    JOIN kb_adverse_event AS k ON k.code = e.code AND k.kind = 'allergic'
    LEFT JOIN decisions AS d
        ON d.patient_key = e.patient_key AND d.code = 'rechallenge_cleared'
        AND d.event_date >= e.event_date AND d.event_date <= :as_of
    WHERE e.event_date <= :as_of
    GROUP BY e.patient_key, e.event_date
), held AS (
    -- injection days during a hold (read from the few patients with an allergic reaction)
    SELECT DISTINCT a.patient_key, a.event_date
    FROM administrations AS a
    JOIN allergic AS al
        ON al.patient_key = a.patient_key AND al.event_date < a.event_date
        AND (al.cleared_on IS NULL OR al.cleared_on > a.event_date)
    WHERE a.route <> 'oral' AND a.event_date <= :as_of
)
SELECT
    j.patient_key, j.event_date, j.product, j.dose_mcg, j.route, j.oral, j.other_use,
    j.for_deficiency AND (j.oral OR h.patient_key IS NULL) AS valid
FROM judged AS j
LEFT JOIN held AS h ON h.patient_key = j.patient_key AND h.event_date = j.event_date
