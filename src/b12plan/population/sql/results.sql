-- Laboratory results known on :as_of, in canonical units, with the cut-offs that apply to each
-- and its category. Mirrors b12plan.core.facts.results / to_result: a result outside the
-- physiologically possible range for its analyte and reported unit is left out of every decision
-- (facts.plausible). Where the knowledge base has cut-offs in the reported unit (NG239: ng/L as
-- well as pmol/L) the reported figure is compared with them; otherwise the canonical value is
-- compared with the canonical cut-offs. An assay's own reference_low replaces the deficiency
-- cut-off (the indeterminate band stays above it), its own reference_high replaces a marker's
-- upper limit. ``severity`` orders two results of one analyte on one day as core does: the higher,
-- the worse, and the worse one counts as the latest.
WITH o AS (
    SELECT
        o.patient_key, o.event_date, o.code, o.value, o.reference_low,
        o.reported_value, o.reported_reference_low,
        t.unit IS NOT NULL AS in_unit,
        t.deficient_below AS unit_low,
        t.normal_above AS unit_normal_above,
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
    LEFT JOIN kb_plausible AS pl ON pl.code = o.code AND pl.unit = o.reported_unit
    LEFT JOIN kb_unit_threshold AS t ON t.code = o.code AND t.unit = o.reported_unit
    WHERE o.event_date <= :as_of
        AND (pl.code IS NULL
             OR (o.reported_value >= pl.low AND o.reported_value <= pl.high))
), cut AS (
    -- in the reported unit: the unit's own cut-offs, the assay's reference_low overriding
    SELECT
        o.*,
        CASE WHEN unit_low IS NOT NULL AND reported_reference_low IS NOT NULL
             THEN reported_reference_low ELSE unit_low END AS r_low,
        CASE WHEN unit_low IS NOT NULL AND reported_reference_low IS NOT NULL
                  AND unit_normal_above IS NOT NULL
             THEN GREATEST(unit_normal_above, reported_reference_low)
             ELSE unit_normal_above END AS r_normal_above
    FROM o
)
SELECT
    patient_key, event_date, code, value, reference_low, severity,
    CASE
        WHEN in_unit THEN
            CASE
                WHEN r_low IS NOT NULL AND r_normal_above IS NOT NULL THEN
                    CASE WHEN reported_value < r_low THEN 'deficient'
                         WHEN reported_value > r_normal_above THEN 'normal'
                         ELSE 'indeterminate' END
                WHEN r_low IS NOT NULL THEN
                    CASE WHEN reported_value < r_low THEN 'deficient' ELSE 'normal' END
                ELSE 'normal'
            END
        WHEN low IS NOT NULL AND normal_above IS NOT NULL THEN
            CASE WHEN value < low THEN 'deficient'
                 WHEN value > normal_above THEN 'normal'
                 ELSE 'indeterminate' END
        WHEN low IS NOT NULL THEN CASE WHEN value < low THEN 'deficient' ELSE 'normal' END
        WHEN high IS NOT NULL THEN CASE WHEN value > high THEN 'raised' ELSE 'normal' END
        ELSE 'normal'
    END AS category
FROM cut
