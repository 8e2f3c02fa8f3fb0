-- One row per patient: what core's facts and context derive before a protocol is chosen
-- (b12plan.core.facts, b12plan.core.evaluate.build_context): causes, neurological involvement,
-- the current order, the course of valid injections, treatment before the first recorded dose,
-- the deficiency status from the latest result per analyte on or before the first treatment,
-- haemoglobin and MCV at the start, age, an oral regimen, and whether treatment is indicated.
WITH cause_flags AS (
    SELECT
        c.patient_key,
        MAX(CASE WHEN k.chronic THEN 1 ELSE 0 END) AS chronic,
        MAX(CASE WHEN k.malabsorptive THEN 1 ELSE 0 END) AS malabsorptive,
        MAX(CASE WHEN c.cause = 'dietary' THEN 1 ELSE 0 END) AS dietary,
        -- dietary_only: pregnancy, breastfeeding and "unknown" are not absorption-related causes
        MAX(CASE WHEN c.cause NOT IN ('dietary', 'pregnancy', 'breastfeeding', 'unknown')
                 THEN 1 ELSE 0 END) AS other_cause,
        MAX(CASE WHEN c.cause = 'pregnancy' THEN 1 ELSE 0 END) AS pregnant,
        MAX(CASE WHEN c.cause IN ('pregnancy', 'breastfeeding') THEN 1 ELSE 0 END)
            AS pregnant_or_breastfeeding,
        MAX(CASE WHEN c.cause = 'nitrous_oxide' THEN 1 ELSE 0 END) AS nitrous_cause,
        MAX(CASE WHEN c.cause <> 'unknown' THEN 1 ELSE 0 END) AS known_cause
    FROM causes AS c
    LEFT JOIN kb_cause AS k ON k.code = c.cause
    GROUP BY c.patient_key
), medication_flags AS (
    -- medications recorded by :as_of (active or not)
    SELECT
        m.patient_key,
        MAX(CASE WHEN k.risk_factor THEN 1 ELSE 0 END) AS risk_factor,
        MAX(CASE WHEN m.code = 'nitrous_oxide' THEN 1 ELSE 0 END) AS nitrous_medication
    FROM medications AS m
    LEFT JOIN kb_medication AS k ON k.code = m.code
    WHERE m.start_date <= :as_of
    GROUP BY m.patient_key
), neuro AS (
    SELECT
        patient_key,
        MAX(CASE WHEN status <> 'resolved' THEN 1 ELSE 0 END) AS unresolved
    FROM symptom_status
    WHERE neurological
    GROUP BY patient_key
), rx AS (
    -- the current order: the latest prescription started on or before :as_of
    SELECT * FROM (
        SELECT
            p.*,
            ROW_NUMBER() OVER (
                PARTITION BY p.patient_key ORDER BY p.start_date DESC, p.end_date DESC
            ) AS rn
        FROM prescriptions AS p
        WHERE p.start_date <= :as_of
    ) AS ranked
    WHERE rn = 1
), treatment_start AS (
    -- the first treatment: the first valid injection, or the start of treatment given elsewhere
    SELECT
        p.patient_key,
        CASE
            WHEN p.prior_since IS NULL OR p.prior_since > :as_of THEN c.first_dose
            WHEN c.first_dose IS NULL OR p.prior_since < c.first_dose THEN p.prior_since
            ELSE c.first_dose
        END AS first_treatment
    FROM patients AS p
    LEFT JOIN course AS c ON c.patient_key = p.patient_key
), basis AS (
    SELECT
        r.patient_key, r.code, r.event_date, r.category,
        MAX(r.event_date) OVER (PARTITION BY r.patient_key, r.code) AS last_date
    FROM results AS r
    JOIN treatment_start AS t ON t.patient_key = r.patient_key
    WHERE r.code IN ('b12_total', 'b12_active', 'mma', 'homocysteine')
        AND (t.first_treatment IS NULL OR r.event_date <= t.first_treatment)
), latest_basis AS (
    SELECT patient_key, code, MIN(category) AS category, COUNT(DISTINCT category) AS categories
    FROM basis
    WHERE event_date = last_date
    GROUP BY patient_key, code
), deficiency AS (
    SELECT
        patient_key,
        MAX(categories) AS categories,
        MAX(CASE WHEN code IN ('b12_total', 'b12_active') AND category = 'deficient'
                 THEN 1 ELSE 0 END) AS b12_deficient,
        MAX(CASE WHEN code IN ('b12_total', 'b12_active') AND category = 'indeterminate'
                 THEN 1 ELSE 0 END) AS b12_indeterminate,
        MAX(CASE WHEN code IN ('b12_total', 'b12_active') THEN 1 ELSE 0 END) AS b12_any,
        MAX(CASE WHEN code = 'b12_active' THEN 1 ELSE 0 END) AS active_tested,
        MAX(CASE WHEN code = 'mma' THEN category END) AS mma,
        MAX(CASE WHEN code = 'homocysteine' THEN category END) AS homocysteine
    FROM latest_basis
    GROUP BY patient_key
), start_blood AS (
    SELECT
        patient_key,
        MAX(CASE WHEN code = 'haemoglobin' THEN value END) AS hb,
        MAX(CASE WHEN code = 'haemoglobin' THEN reference_low END) AS hb_reference_low,
        MAX(CASE WHEN code = 'mcv' THEN category END) AS mcv_category
    FROM (
        SELECT
            r.*,
            -- two results on one day: the worse counts
            ROW_NUMBER() OVER (
                PARTITION BY r.patient_key, r.code ORDER BY r.event_date DESC, r.severity DESC
            ) AS rn
        FROM results AS r
        LEFT JOIN course AS c ON c.patient_key = r.patient_key
        WHERE r.code IN ('haemoglobin', 'mcv')
            AND (c.first_dose IS NULL OR r.event_date <= c.first_dose)
    ) AS ranked
    WHERE rn = 1
    GROUP BY patient_key
), in_use_rows AS (
    -- without an order, the doses in use (b12plan.core.evaluate.build_context): every dose
    -- given, valid or not, except another use of the product (the cyanide antidote)
    SELECT a.patient_key, a.event_date, a.product, a.dose_mcg, a.route, a.route = 'oral' AS oral
    FROM administrations AS a
    LEFT JOIN rx ON rx.patient_key = a.patient_key
    LEFT JOIN kb_not_for_deficiency AS n
        ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
    WHERE rx.patient_key IS NULL AND a.event_date <= :as_of
        AND (a.route = 'oral' OR n.product IS NULL)
), last_day AS (
    SELECT patient_key, oral, MAX(event_date) AS last_date
    FROM in_use_rows
    GROUP BY patient_key, oral
), last_rows AS (
    -- the latest dose of each kind (injection, oral); on a day with several, the last in order
    SELECT
        r.patient_key, r.oral, r.event_date, r.product, r.dose_mcg, r.route,
        ROW_NUMBER() OVER (
            PARTITION BY r.patient_key, r.oral
            ORDER BY r.product DESC, r.dose_mcg DESC, r.route DESC
        ) AS pick,
        ROW_NUMBER() OVER (
            PARTITION BY r.patient_key
            ORDER BY r.event_date DESC, r.product DESC, r.dose_mcg DESC, r.route DESC
        ) AS overall
    FROM in_use_rows AS r
    JOIN last_day AS l
        ON l.patient_key = r.patient_key AND l.oral = r.oral AND l.last_date = r.event_date
), in_use AS (
    -- the latest of all decides whether the regimen is oral; the latest of that kind gives the
    -- product and dose in use
    SELECT
        patient_key,
        MAX(CASE WHEN pick = 1 AND NOT oral THEN product END) AS injection_product,
        MAX(CASE WHEN pick = 1 AND NOT oral THEN dose_mcg END) AS injection_dose_mcg,
        MAX(CASE WHEN pick = 1 AND oral THEN product END) AS oral_product,
        MAX(CASE WHEN pick = 1 AND oral THEN dose_mcg END) AS oral_dose_mcg,
        MAX(CASE WHEN overall = 1 AND oral THEN 1 ELSE 0 END) AS latest_is_oral
    FROM last_rows
    GROUP BY patient_key
), oral_valid AS (
    -- a valid oral dose recorded (valid injections are the course; an oral dose is never held)
    SELECT DISTINCT patient_key
    FROM oral_doses
    WHERE valid
), follow_up AS (
    SELECT r.patient_key, MAX(r.event_date) AS last_follow_up_date
    FROM results AS r
    JOIN kb_analyte AS a ON a.code = r.code
    WHERE a.follow_up
    GROUP BY r.patient_key
), facts AS (
    SELECT
        p.patient_key,
        p.jurisdiction,
        p.sex,
        -- completed years of age on :as_of below the minimum (b12plan.core.facts.age_years)
        p.birth_date IS NOT NULL
            AND EXTRACT(YEAR FROM CAST(:as_of AS DATE)) - EXTRACT(YEAR FROM p.birth_date)
                - CASE WHEN EXTRACT(MONTH FROM CAST(:as_of AS DATE))
                            < EXTRACT(MONTH FROM p.birth_date)
                           OR (EXTRACT(MONTH FROM CAST(:as_of AS DATE))
                                   = EXTRACT(MONTH FROM p.birth_date)
                               AND EXTRACT(DAY FROM CAST(:as_of AS DATE))
                                   < EXTRACT(DAY FROM p.birth_date))
                       THEN 1 ELSE 0 END
                < :minimum_age_years AS out_of_scope,
        COALESCE(cf.chronic, 0) = 1 AS chronic,
        COALESCE(cf.malabsorptive, 0) = 1 AS malabsorptive,
        COALESCE(cf.dietary, 0) = 1 AND COALESCE(cf.other_cause, 0) = 0 AS dietary_only,
        COALESCE(cf.pregnant, 0) = 1 AS pregnant,
        COALESCE(cf.pregnant_or_breastfeeding, 0) = 1 AS pregnant_or_breastfeeding,
        COALESCE(cf.known_cause, 0) = 1 AS known_cause,
        COALESCE(mf.risk_factor, 0) = 1 AS risk_factor_medication,
        COALESCE(cf.nitrous_cause, 0) = 1 OR COALESCE(mf.nitrous_medication, 0) = 1
            AS nitrous_oxide,
        n.patient_key IS NOT NULL AS neurological,
        COALESCE(n.unresolved, 0) = 1 AS neuro_unresolved,
        rx.product AS rx_product,
        rx.dose_mcg AS rx_dose_mcg,
        rx.phase AS rx_phase,
        rx.route AS rx_route,
        rx.interval_days AS rx_interval_days,
        rx.start_date AS rx_start,
        rx.end_date AS rx_end,
        c.doses,
        COALESCE(c.loading_run, 0) AS raw_loading_run,
        c.first_dose,
        c.last_dose,
        c.last_loading_dose AS raw_last_loading_dose,
        c.first_maintenance_dose AS raw_first_maintenance_dose,
        CASE WHEN p.prior_since <= :as_of THEN p.prior_since END AS prior_since,
        CASE WHEN p.prior_since <= :as_of THEN COALESCE(p.prior_loading_completed, FALSE)
             ELSE FALSE END AS prior_loading_completed,
        CASE
            WHEN p.prior_since IS NULL OR p.prior_since > :as_of THEN c.first_dose
            WHEN c.first_dose IS NULL OR p.prior_since < c.first_dose THEN p.prior_since
            ELSE c.first_dose
        END AS first_treatment,
        CASE WHEN rx.patient_key IS NOT NULL THEN rx.route = 'oral'
             ELSE COALESCE(lv.latest_is_oral, 0) = 1 END AS oral,
        ov.patient_key IS NOT NULL AS oral_given,
        ov.patient_key IS NOT NULL OR c.first_dose IS NOT NULL AS any_valid_dose,
        CASE WHEN rx.patient_key IS NOT NULL THEN rx.product
             WHEN lv.latest_is_oral = 1 THEN lv.oral_product
             ELSE lv.injection_product END AS product_in_use,
        CASE WHEN rx.patient_key IS NOT NULL THEN rx.dose_mcg
             WHEN lv.latest_is_oral = 1 THEN lv.oral_dose_mcg
             ELSE lv.injection_dose_mcg END AS dose_in_use_mcg,
        fu.last_follow_up_date,
        d.patient_key IS NOT NULL AND d.mma IS NOT NULL AS mma_tested,
        COALESCE(d.active_tested, 0) = 1 AS active_tested,
        CASE
            WHEN d.patient_key IS NULL OR d.categories > 1 THEN 'unknown'
            WHEN d.b12_deficient = 1 THEN 'confirmed'
            WHEN d.b12_indeterminate = 1 THEN
                CASE d.mma WHEN 'raised' THEN 'confirmed' WHEN 'normal' THEN 'unlikely'
                           ELSE 'possible' END
            WHEN d.mma = 'raised' THEN 'possible'
            -- raised homocysteine alone: at most possible, and a normal MMA outweighs it
            WHEN d.homocysteine = 'raised' AND d.mma IS NULL THEN 'possible'
            WHEN d.b12_any = 1 OR d.mma = 'normal' THEN 'unlikely'
            ELSE 'unknown'
        END AS tested_deficiency,
        sb.hb AS hb_at_start,
        sb.hb_reference_low,
        sb.mcv_category = 'raised' AS macrocytic_at_start
    FROM patients AS p
    LEFT JOIN cause_flags AS cf ON cf.patient_key = p.patient_key
    LEFT JOIN medication_flags AS mf ON mf.patient_key = p.patient_key
    LEFT JOIN neuro AS n ON n.patient_key = p.patient_key
    LEFT JOIN rx ON rx.patient_key = p.patient_key
    LEFT JOIN course AS c ON c.patient_key = p.patient_key
    LEFT JOIN deficiency AS d ON d.patient_key = p.patient_key
    LEFT JOIN start_blood AS sb ON sb.patient_key = p.patient_key
    LEFT JOIN in_use AS lv ON lv.patient_key = p.patient_key
    LEFT JOIN oral_valid AS ov ON ov.patient_key = p.patient_key
    LEFT JOIN follow_up AS fu ON fu.patient_key = p.patient_key
), judged AS (
    SELECT
        facts.*,
        -- nitrous oxide with unresolved neurological symptoms: functional deficiency, treat now
        CASE WHEN nitrous_oxide AND neuro_unresolved
                  AND tested_deficiency IN ('unlikely', 'unknown')
             THEN 'possible' ELSE tested_deficiency END AS deficiency,
        -- WHO cut-offs (pregnancy first, then sex; an unknown sex gives a band), unless the
        -- laboratory's own lower limit is given (b12plan.core.facts.is_anaemic)
        CASE
            WHEN hb_at_start IS NULL THEN NULL
            WHEN hb_reference_low IS NOT NULL THEN hb_at_start < hb_reference_low
            WHEN pregnant THEN hb_at_start < :anaemia_pregnant_below
            WHEN sex = 'female' THEN hb_at_start < :anaemia_female_below
            WHEN sex = 'male' THEN hb_at_start < :anaemia_male_below
            WHEN hb_at_start < LEAST(:anaemia_female_below, :anaemia_male_below) THEN TRUE
            WHEN hb_at_start >= GREATEST(:anaemia_female_below, :anaemia_male_below) THEN FALSE
        END AS anaemic_at_start
    FROM facts
), confirm AS (
    SELECT
        judged.*,
        -- an indeterminate or supportive result alone, no dose given, no neurological symptom,
        -- no anaemia, no chronic cause: test MMA or active B12 before injecting (rule 5)
        NOT any_valid_dose AND prior_since IS NULL AND deficiency = 'possible'
            AND NOT mma_tested AND NOT active_tested AND NOT neurological AND NOT chronic
            AND NOT COALESCE(anaemic_at_start, FALSE) AS confirmatory_test_needed
    FROM judged
)
-- only the columns later steps read
SELECT
    patient_key, jurisdiction, sex, chronic, dietary_only, pregnant, neurological, rx_phase,
    rx_interval_days, rx_start, rx_end, rx_route, doses, raw_loading_run, first_dose, last_dose,
    raw_last_loading_dose, raw_first_maintenance_dose, prior_since, prior_loading_completed,
    first_treatment, oral, oral_given, product_in_use, dose_in_use_mcg, hb_reference_low,
    deficiency, out_of_scope, malabsorptive, pregnant_or_breastfeeding, known_cause,
    risk_factor_medication, nitrous_oxide, neuro_unresolved, rx_product, rx_dose_mcg,
    last_follow_up_date, hb_at_start, macrocytic_at_start, anaemic_at_start,
    confirmatory_test_needed,
    (deficiency IN ('confirmed', 'possible') OR chronic OR prior_since IS NOT NULL)
        AND NOT out_of_scope AND NOT confirmatory_test_needed AS indicated
FROM confirm
