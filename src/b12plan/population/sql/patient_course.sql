-- One row per patient: the protocol's figures, and the course as the plan reads it
-- (b12plan.core.evaluate.build_context): loading completed elsewhere makes every recorded dose
-- maintenance; treatment begun at a maintenance interval less than :catch_up_window_days ago
-- catches up (every valid dose counts as loading); treatment began at a maintenance interval
-- (b12plan.core.rules._maintenance_without_loading). A step of its own because patient_state
-- reads it several times.
WITH base AS (
    SELECT
        f.*,
        pc.protocol_id,
        k.kind, k.loading_end, k.loading_doses_minimum, k.lifelong_when_chronic, k.dietary_rule,
        k.maintenance_min_days, k.maintenance_due_days, k.maintenance_overdue_days,
        k.interval_max_days,
        k.first_dose_grace_days,
        CASE WHEN f.rx_phase = 'maintenance' THEN f.rx_interval_days END AS requested_days,
        COALESCE(k.kind = 'oral', FALSE) AS oral_protocol,
        -- the second valid dose came a maintenance gap after the first
        COALESCE(f.doses >= 2 AND f.raw_loading_run = 1, FALSE) AS started_at_maintenance,
        NOT (f.deficiency = 'unlikely' AND NOT f.chronic) AND NOT f.prior_loading_completed
            AS loading_expected
    FROM patient_facts AS f
    LEFT JOIN protocol_choice AS pc ON pc.patient_key = f.patient_key
    LEFT JOIN kb_protocol AS k ON k.protocol_id = pc.protocol_id
), course_read AS (
    SELECT
        b.*,
        b.loading_expected AND NOT b.oral_protocol
            AND (b.started_at_maintenance
                 OR (b.rx_phase = 'maintenance' AND b.raw_loading_run <= 1))
            AS maintenance_without_loading,
        b.loading_expected AND b.protocol_id IS NOT NULL AND NOT b.oral_protocol
            AND b.started_at_maintenance
            AND DATE_DIFF('day', b.first_dose, :as_of) < :catch_up_window_days AS catch_up,
        -- the course as the rules read it: loading completed elsewhere, every dose maintenance
        CASE WHEN b.prior_loading_completed THEN 0 ELSE b.raw_loading_run END AS loading_run,
        CASE WHEN b.prior_loading_completed THEN b.prior_since
             ELSE b.raw_last_loading_dose END AS last_loading_dose,
        CASE WHEN b.prior_loading_completed THEN b.first_dose
             ELSE b.raw_first_maintenance_dose END AS first_maintenance_dose
    FROM base AS b
), course_eff AS (
    SELECT
        c.*,
        -- valid doses counted towards loading (catch-up: all of them)
        CASE WHEN c.catch_up THEN c.doses ELSE c.loading_run END AS loading_counted,
        COALESCE(c.doses, 0) > c.loading_run AS moved_to_maintenance,
        -- the day loading is judged: the switch to longer intervals, else :as_of
        CASE WHEN c.catch_up THEN :as_of
             ELSE COALESCE(c.first_maintenance_dose, :as_of) END AS judged_on
    FROM course_read AS c
)
SELECT * FROM course_eff
