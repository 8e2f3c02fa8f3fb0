-- The protocol for each patient with an indication (b12plan.core.plan.choose_protocol): the
-- product in use picks the family (the jurisdiction's own protocols first), else the
-- jurisdiction does; neurological involvement and a dietary-only cause select within it; a dose
-- range breaks a remaining tie, then the jurisdiction default, then the knowledge base's order.
-- An oral regimen only ever takes an oral protocol (contract v1.1 rule 6).
-- The choice depends only on those facts, so it is made once per distinct combination.
WITH facts AS (
    SELECT
        patient_key, jurisdiction, oral, neurological, dietary_only,
        product_in_use IS NULL AS no_product, COALESCE(product_in_use, '') AS product,
        dose_in_use_mcg IS NULL AS no_dose, COALESCE(dose_in_use_mcg, 0) AS dose_mcg
    FROM patient_facts
    WHERE indicated
), combos AS (
    SELECT DISTINCT
        jurisdiction, oral, neurological, dietary_only, no_product, product, no_dose, dose_mcg
    FROM facts
), family AS (
    SELECT
        f.*,
        k.protocol_id, k.ordinal, k.jurisdiction AS protocol_jurisdiction,
        k.neurological_rule, k.dietary_rule, k.jurisdiction_default,
        k.dose_min_mcg, k.dose_max_mcg,
        MAX(CASE WHEN k.jurisdiction = f.jurisdiction THEN 1 ELSE 0 END) OVER (
            PARTITION BY f.jurisdiction, f.oral, f.neurological, f.dietary_only, f.no_product,
                f.product, f.no_dose, f.dose_mcg
        ) AS has_local
    FROM combos AS f
    JOIN kb_protocol AS k
        ON k.kind = CASE WHEN f.oral THEN 'oral' ELSE 'injection' END
        AND ((NOT f.no_product AND k.product = f.product)
             OR (f.no_product AND k.jurisdiction = f.jurisdiction))
), fitting AS (
    SELECT
        family.*,
        NOT oral AND NOT no_dose
            AND COALESCE(dose_mcg >= dose_min_mcg AND dose_mcg <= dose_max_mcg, FALSE)
            AS dose_fits
    FROM family
    WHERE (has_local = 0 OR protocol_jurisdiction = jurisdiction)
        -- an oral regimen is not selected by neurology or diet (NEURO_UNDERTREATED says so)
        AND (oral OR neurological_rule = 'any'
             OR (neurological_rule = 'required') = neurological)
        AND (oral OR dietary_rule = 'any' OR (dietary_rule = 'required') = dietary_only)
), by_dose AS (
    SELECT
        fitting.*,
        MAX(CASE WHEN dose_fits THEN 1 ELSE 0 END) OVER (
            PARTITION BY jurisdiction, oral, neurological, dietary_only, no_product, product, no_dose,
                dose_mcg
        ) AS any_dose_fits
    FROM fitting
), ranked AS (
    SELECT
        by_dose.*,
        ROW_NUMBER() OVER (
            PARTITION BY jurisdiction, oral, neurological, dietary_only, no_product, product, no_dose,
                dose_mcg
            ORDER BY CASE WHEN jurisdiction_default THEN 0 ELSE 1 END, ordinal
        ) AS pick
    FROM by_dose
    WHERE any_dose_fits = 0 OR dose_fits
)
SELECT f.patient_key, r.protocol_id
FROM facts AS f
JOIN ranked AS r
    ON r.pick = 1
    AND r.jurisdiction = f.jurisdiction
    AND r.oral = f.oral
    AND r.neurological = f.neurological
    AND r.dietary_only = f.dietary_only
    AND r.no_product = f.no_product
    AND r.product = f.product
    AND r.no_dose = f.no_dose
    AND r.dose_mcg = f.dose_mcg
