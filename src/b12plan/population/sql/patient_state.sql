-- One row per patient: loading progress, maintenance interval, phase and the next dose's
-- overdue date (b12plan.core.plan.loading_state / maintenance_interval / window_after and
-- b12plan.core.evaluate._phase). Windows are anchored on the last actual dose. Two judgements
-- several rules share: treatment began at a maintenance interval
-- (b12plan.core.rules._maintenance_without_loading), and loading moved to longer intervals
-- before it was complete (b12plan.core.rules._loading_cut_short).
WITH base AS (
    SELECT
        f.*,
        pc.protocol_id,
        k.loading_end, k.loading_doses_minimum, k.lifelong_when_chronic, k.dietary_rule,
        k.maintenance_due_days, k.maintenance_overdue_days, k.interval_max_days,
        k.first_dose_grace_days,
        CASE WHEN f.rx_phase = 'maintenance' THEN f.rx_interval_days END AS requested_days,
        COALESCE(f.first_maintenance_dose, :as_of) AS judged_on
    FROM patient_facts AS f
    LEFT JOIN protocol_choice AS pc ON pc.patient_key = f.patient_key
    LEFT JOIN kb_protocol AS k ON k.protocol_id = pc.protocol_id
), neuro_status AS (
    -- open-ended (neurological) loading: each neurological symptom's latest status on the day
    -- loading is judged (the switch to longer intervals, else :as_of)
    SELECT
        s.patient_key, s.code, s.event_date, s.status, b.judged_on, b.first_dose,
        ROW_NUMBER() OVER (
            PARTITION BY s.patient_key, s.code
            ORDER BY CASE WHEN s.event_date <= b.judged_on THEN 0 ELSE 1 END,
                s.event_date DESC, s.status DESC
        ) AS rn
    FROM symptoms AS s
    JOIN kb_symptom AS k ON k.code = s.code
    JOIN base AS b ON b.patient_key = s.patient_key
    WHERE k.neurological AND s.event_date <= :as_of
        AND b.loading_end = 'symptoms_stop_improving' AND b.first_dose IS NOT NULL
), settled AS (
    SELECT
        patient_key,
        MIN(CASE WHEN rn = 1 THEN
                CASE WHEN event_date <= judged_on AND status IN ('stable', 'resolved')
                     THEN 1 ELSE 0 END
            END) = 1
        AND MAX(CASE WHEN event_date > first_dose AND event_date <= judged_on THEN 1 ELSE 0 END)
            = 1 AS symptoms_settled
    FROM neuro_status
    GROUP BY patient_key
), interval_chosen AS (
    SELECT
        b.*,
        COALESCE(s.symptoms_settled, FALSE) AS symptoms_settled,
        CASE WHEN b.protocol_id IS NULL THEN NULL
             WHEN b.requested_days IS NULL OR b.requested_days > b.interval_max_days
                 THEN b.maintenance_due_days
             ELSE b.requested_days END AS interval_days,
        COALESCE(b.requested_days > b.interval_max_days, FALSE) AS interval_limited,
        -- a shorter prescribed interval scales the window (rounded half to even, as core does)
        CAST(b.requested_days AS BIGINT) * b.maintenance_overdue_days AS scaled_x,
        CAST(FLOOR(CAST(b.requested_days AS DOUBLE) * b.maintenance_overdue_days
                   / b.maintenance_due_days) AS BIGINT) AS scaled_q
    FROM base AS b
    LEFT JOIN settled AS s ON s.patient_key = b.patient_key
), windowed AS (
    SELECT
        i.*,
        CASE
            WHEN i.protocol_id IS NULL THEN NULL
            WHEN i.requested_days IS NULL OR i.requested_days > i.interval_max_days
                OR i.requested_days = i.maintenance_due_days THEN i.maintenance_overdue_days
            ELSE GREATEST(
                i.requested_days,
                i.scaled_q + CASE
                    WHEN 2 * (i.scaled_x - i.scaled_q * i.maintenance_due_days)
                        > i.maintenance_due_days THEN 1
                    WHEN 2 * (i.scaled_x - i.scaled_q * i.maintenance_due_days)
                        = i.maintenance_due_days THEN i.scaled_q % 2
                    ELSE 0 END)
        END AS maintenance_overdue_final,
        CASE
            WHEN i.first_dose IS NULL OR i.protocol_id IS NULL THEN FALSE
            WHEN i.loading_end = 'doses'
                THEN i.loading_run >= COALESCE(i.loading_doses_minimum, 0)
            ELSE i.symptoms_settled
        END AS loading_complete
    FROM interval_chosen AS i
), phased AS (
    SELECT
        w.*,
        CASE
            WHEN w.first_dose IS NULL THEN 'untreated'
            WHEN w.rx_end IS NOT NULL AND w.rx_end <= :as_of THEN 'stopped'
            WHEN w.interval_days IS NOT NULL
                AND DATE_DIFF('day', w.last_dose, :as_of) > :stopped_factor * w.interval_days
                THEN 'stopped'
            WHEN w.loading_run < w.doses OR w.loading_complete THEN 'maintenance'
            ELSE 'loading'
        END AS phase
    FROM windowed AS w
)
SELECT
    p.*,
    NOT (p.deficiency = 'unlikely' AND NOT p.chronic)
        AND ((p.doses >= 2 AND p.loading_run = 1)
            OR (p.rx_phase = 'maintenance' AND p.loading_run <= 1)) AS maintenance_without_loading,
    p.protocol_id IS NOT NULL
        AND p.loading_run >= 2
        AND NOT p.loading_complete
        AND (p.loading_run < p.doses OR p.rx_phase = 'maintenance') AS loading_cut_short,
    st.due_days AS stage_due_days,  -- the interval of the loading stage the next dose is in
    CASE
        WHEN p.protocol_id IS NULL THEN NULL
        WHEN p.first_dose IS NULL THEN :as_of + CAST(p.first_dose_grace_days AS INTEGER)
        WHEN p.phase = 'loading' THEN p.last_dose
            + CAST(COALESCE(st.overdue_days, p.maintenance_overdue_final) AS INTEGER)
        WHEN p.phase = 'maintenance'
            OR (p.phase = 'stopped' AND p.chronic AND p.lifelong_when_chronic)
            THEN p.last_dose + CAST(p.maintenance_overdue_final AS INTEGER)
    END AS overdue_after
FROM phased AS p
LEFT JOIN kb_loading_stage AS st
    ON st.protocol_id = p.protocol_id
    AND p.loading_run + 1 >= st.first_dose_no
    AND (st.last_dose_no IS NULL OR p.loading_run + 1 <= st.last_dose_no)
