-- Laboratory results known on :as_of, in canonical units, with the cut-offs that apply to each
-- and its category. Mirrors b12plan.core.facts.to_result / Result.category: an assay's own
-- reference_low replaces the deficiency cut-off (the indeterminate band stays above it), its own
-- reference_high replaces a marker's upper limit. ``severity`` orders two results of one analyte
-- on one day as core does (b12plan.core.facts.results): the higher, the worse, and the worse one
-- counts as the latest.
WITH o AS (
    SELECT
        o.patient_key, o.event_date, o.code, o.value, o.reference_low,
        CASE WHEN a.worse = 'low' THEN -o.value ELSE o.value END AS severity,
        CASE WHEN a.deficient_below IS NOT NULL AND o.reference_low IS NOT NULL
             THEN o.reference_low ELSE a.deficient_below END AS low,
        CASE WHEN a.deficient_below IS NOT NULL AND o.reference_low IS NOT NULL
                  AND a.normal_above IS NOT NULL
             THEN GREATEST(a.normal_above, o.reference_low) ELSE a.normal_above END AS normal_above,
        CASE WHEN a.raised_above IS NOT NULL AND o.reference_high IS NOT NULL
             THEN o.reference_high ELSE a.raised_above END AS high
    FROM observations AS o
    JOIN kb_analyte AS a ON a.code = o.code
    WHERE o.event_date <= :as_of
)
SELECT
    patient_key, event_date, code, value, reference_low, severity,
    CASE
        WHEN low IS NOT NULL AND normal_above IS NOT NULL THEN
            CASE WHEN value < low THEN 'deficient'
                 WHEN value > normal_above THEN 'normal'
                 ELSE 'indeterminate' END
        WHEN low IS NOT NULL THEN CASE WHEN value < low THEN 'deficient' ELSE 'normal' END
        WHEN high IS NOT NULL THEN CASE WHEN value > high THEN 'raised' ELSE 'normal' END
        ELSE 'normal'
    END AS category
FROM o
