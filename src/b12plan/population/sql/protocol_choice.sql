-- The protocol for each patient with an indication (b12plan.core.plan.choose_protocol): the
-- product in use picks the family (the jurisdiction's own protocols first), else the
-- jurisdiction does; neurological involvement and a dietary-only cause select within it; a dose
-- range breaks a remaining tie, then the jurisdiction default, then the knowledge base's order.
WITH f AS (
    SELECT patient_id, jurisdiction, product_in_use, dose_in_use_mcg, neurological, dietary_only
    FROM patient_facts
    WHERE indicated
), family AS (
    SELECT
        f.*,
        k.protocol_id, k.ordinal, k.jurisdiction AS protocol_jurisdiction,
        k.neurological_rule, k.dietary_rule, k.jurisdiction_default,
        k.dose_min_mcg, k.dose_max_mcg,
        MAX(CASE WHEN k.jurisdiction = f.jurisdiction THEN 1 ELSE 0 END)
            OVER (PARTITION BY f.patient_id) AS has_local
    FROM f
    JOIN kb_protocol AS k
        ON (f.product_in_use IS NOT NULL AND k.product = f.product_in_use)
        OR (f.product_in_use IS NULL AND k.jurisdiction = f.jurisdiction)
), fitting AS (
    SELECT
        family.*,
        COALESCE(dose_in_use_mcg >= dose_min_mcg AND dose_in_use_mcg <= dose_max_mcg, FALSE)
            AS dose_fits
    FROM family
    WHERE (has_local = 0 OR protocol_jurisdiction = jurisdiction)
        AND (neurological_rule = 'any' OR (neurological_rule = 'required') = neurological)
        AND (dietary_rule = 'any' OR (dietary_rule = 'required') = dietary_only)
), by_dose AS (
    SELECT
        fitting.*,
        MAX(CASE WHEN dose_fits THEN 1 ELSE 0 END) OVER (PARTITION BY patient_id)
            AS any_dose_fits
    FROM fitting
), ranked AS (
    SELECT
        patient_id, protocol_id,
        ROW_NUMBER() OVER (
            PARTITION BY patient_id
            ORDER BY CASE WHEN jurisdiction_default THEN 0 ELSE 1 END, ordinal
        ) AS pick
    FROM by_dose
    WHERE any_dose_fits = 0 OR dose_fits
)
SELECT patient_id, protocol_id
FROM ranked
WHERE pick = 1
