-- One row per patient: what core's facts and context derive before a protocol is chosen
-- (b12plan.core.facts, b12plan.core.evaluate.build_context): causes, neurological involvement,
-- the current order, the course, the deficiency status from the latest result per analyte on or
-- before the first injection, and haemoglobin and MCV at the start.
WITH cause_flags AS (
    SELECT
        c.patient_key,
        MAX(CASE WHEN k.chronic THEN 1 ELSE 0 END) AS chronic,
        MAX(CASE WHEN c.cause = 'dietary' THEN 1 ELSE 0 END) AS dietary,
        -- dietary_only: pregnancy and "unknown" are not absorption-related causes
        MAX(CASE WHEN c.cause NOT IN ('dietary', 'pregnancy', 'unknown') THEN 1 ELSE 0 END)
            AS other_cause,
        MAX(CASE WHEN c.cause = 'pregnancy' THEN 1 ELSE 0 END) AS pregnant,
        MAX(CASE WHEN c.cause <> 'unknown' THEN 1 ELSE 0 END) AS known_cause
    FROM causes AS c
    LEFT JOIN kb_cause AS k ON k.code = c.cause
    GROUP BY c.patient_key
), neuro AS (
    SELECT DISTINCT s.patient_key
    FROM symptoms AS s
    JOIN kb_symptom AS k ON k.code = s.code
    WHERE k.neurological AND s.event_date <= :as_of
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
), basis AS (
    SELECT
        r.patient_key, r.code, r.event_date, r.category,
        MAX(r.event_date) OVER (PARTITION BY r.patient_key, r.code) AS last_date
    FROM results AS r
    LEFT JOIN course AS c ON c.patient_key = r.patient_key
    WHERE r.code IN ('b12_total', 'b12_active', 'mma', 'homocysteine')
        AND (c.first_dose IS NULL OR r.event_date <= c.first_dose)
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
), without_order AS (
    SELECT c.patient_key, c.last_dose
    FROM course AS c
    LEFT JOIN rx ON rx.patient_key = c.patient_key
    WHERE rx.patient_key IS NULL
), last_injection AS (
    -- without an order, the product and dose of the latest injection are the ones in use;
    -- on a day with several, the greatest product, then dose, as core's ordering keeps last
    SELECT patient_key, product, dose_mcg
    FROM (
        SELECT
            a.patient_key, a.product, a.dose_mcg,
            ROW_NUMBER() OVER (
                PARTITION BY a.patient_key ORDER BY a.product DESC, a.dose_mcg DESC
            ) AS rn
        FROM without_order AS w
        JOIN administrations AS a
            ON a.patient_key = w.patient_key AND a.event_date = w.last_dose
        LEFT JOIN kb_not_for_deficiency AS n
            ON n.product = a.product AND n.route = a.route AND a.dose_mcg >= n.min_mcg
        WHERE a.route <> 'oral' AND n.product IS NULL
    ) AS ranked
    WHERE rn = 1
), last_result AS (
    SELECT patient_key, MAX(event_date) AS last_result_date
    FROM results
    GROUP BY patient_key
), last_symptom AS (
    SELECT patient_key, MAX(event_date) AS last_symptom_date
    FROM symptoms
    WHERE event_date <= :as_of
    GROUP BY patient_key
), facts AS (
    SELECT
        p.patient_key,
        p.jurisdiction,
        p.sex,
        COALESCE(cf.chronic, 0) = 1 AS chronic,
        COALESCE(cf.dietary, 0) = 1 AND COALESCE(cf.other_cause, 0) = 0 AS dietary_only,
        COALESCE(cf.pregnant, 0) = 1 AS pregnant,
        COALESCE(cf.known_cause, 0) = 1 AS known_cause,
        n.patient_key IS NOT NULL AS neurological,
        rx.product AS rx_product,
        rx.dose_mcg AS rx_dose_mcg,
        rx.phase AS rx_phase,
        rx.route AS rx_route,
        rx.interval_days AS rx_interval_days,
        rx.start_date AS rx_start,
        rx.end_date AS rx_end,
        c.doses,
        COALESCE(c.loading_run, 0) AS loading_run,
        c.first_dose,
        c.last_dose,
        c.last_loading_dose,
        c.first_maintenance_dose,
        COALESCE(rx.product, li.product) AS product_in_use,
        CASE WHEN rx.patient_key IS NOT NULL THEN rx.dose_mcg ELSE li.dose_mcg END
            AS dose_in_use_mcg,
        lr.last_result_date,
        ls.last_symptom_date,
        CASE
            WHEN d.patient_key IS NULL OR d.categories > 1 THEN 'unknown'
            WHEN d.b12_deficient = 1 THEN 'confirmed'
            WHEN d.b12_indeterminate = 1 THEN
                CASE d.mma WHEN 'raised' THEN 'confirmed' WHEN 'normal' THEN 'unlikely'
                           ELSE 'possible' END
            WHEN d.mma = 'raised' OR d.homocysteine = 'raised' THEN 'possible'
            WHEN d.b12_any = 1 OR d.mma = 'normal' THEN 'unlikely'
            ELSE 'unknown'
        END AS deficiency,
        sb.hb AS hb_at_start,
        sb.hb_reference_low,
        sb.mcv_category = 'raised' AS macrocytic_at_start
    FROM patients AS p
    LEFT JOIN cause_flags AS cf ON cf.patient_key = p.patient_key
    LEFT JOIN neuro AS n ON n.patient_key = p.patient_key
    LEFT JOIN rx ON rx.patient_key = p.patient_key
    LEFT JOIN course AS c ON c.patient_key = p.patient_key
    LEFT JOIN deficiency AS d ON d.patient_key = p.patient_key
    LEFT JOIN start_blood AS sb ON sb.patient_key = p.patient_key
    LEFT JOIN last_injection AS li ON li.patient_key = p.patient_key
    LEFT JOIN last_result AS lr ON lr.patient_key = p.patient_key
    LEFT JOIN last_symptom AS ls ON ls.patient_key = p.patient_key
)
SELECT
    facts.*,
    deficiency IN ('confirmed', 'possible') OR chronic AS indicated,
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
