-- One row per patient: loading progress, maintenance interval, phase and the next dose's
-- overdue date (b12plan.core.plan.loading_state / maintenance_interval / window_after and
-- b12plan.core.evaluate._phase). Windows are anchored on the last valid dose. Treatment given
-- elsewhere with loading completed makes every recorded dose maintenance; treatment begun at a
-- maintenance interval less than :catch_up_window_days ago catches up with the loading course;
-- an allergic reaction with no rechallenge_cleared decision since puts injections on hold (no
-- next dose); an oral regimen has no injection plan. Judgements several rules share: treatment
-- began at a maintenance interval (b12plan.core.rules._maintenance_without_loading), loading
-- moved to longer intervals before it was complete (_loading_cut_short), and the neurological
-- loading review questions (NEURO_REVIEW_DUE, NEURO_NO_RESPONSE).
WITH base AS (
    SELECT
        f.*,
        pc.protocol_id,
        k.kind, k.loading_end, k.loading_doses_minimum, k.lifelong_when_chronic, k.dietary_rule,
        k.maintenance_due_days, k.maintenance_overdue_days, k.interval_max_days,
        k.first_dose_grace_days,
        CASE WHEN f.rx_phase = 'maintenance' THEN f.rx_interval_days END AS requested_days,
        -- treatment began at a maintenance interval (not for a transfer with loading done)
        NOT f.prior_loading_completed
            AND NOT (f.deficiency = 'unlikely' AND NOT f.chronic)
            AND ((f.doses >= 2 AND f.raw_loading_run = 1)
                 OR (f.rx_phase = 'maintenance' AND f.raw_loading_run <= 1))
            AS maintenance_without_loading
    FROM patient_facts AS f
    LEFT JOIN protocol_choice AS pc ON pc.patient_key = f.patient_key
    LEFT JOIN kb_protocol AS k ON k.protocol_id = pc.protocol_id
), course_read AS (
    SELECT
        b.*,
        b.maintenance_without_loading AND b.first_dose IS NOT NULL
            AND b.protocol_id IS NOT NULL AND b.kind = 'injection'
            AND DATE_DIFF('day', b.first_dose, :as_of) < :catch_up_window_days AS catch_up,
        CASE WHEN b.prior_loading_completed THEN 0 ELSE b.raw_loading_run END AS run0
    FROM base AS b
), course_eff AS (
    -- the course as the plan reads it: transfer with loading done, all maintenance; catch-up,
    -- all loading; else the loading run before the first maintenance-length gap
    SELECT
        c.*,
        CASE WHEN c.catch_up THEN COALESCE(c.doses, 0) ELSE c.run0 END AS loading_run,
        CASE WHEN c.catch_up THEN c.last_dose
             WHEN c.prior_loading_completed THEN NULL
             ELSE c.raw_last_loading_dose END AS last_loading_dose,
        CASE WHEN c.catch_up THEN NULL
             WHEN c.prior_loading_completed THEN c.first_dose
             ELSE c.raw_first_maintenance_dose END AS first_maintenance_dose,
        COALESCE(
            CASE WHEN c.catch_up THEN NULL
                 WHEN c.prior_loading_completed THEN c.first_dose
                 ELSE c.raw_first_maintenance_dose END,
            :as_of) AS judged_on
    FROM course_read AS c
), neuro_decision AS (
    SELECT d.patient_key, MIN(d.event_date) AS decided_on
    FROM decisions AS d
    WHERE d.code = 'neuro_loading_complete' AND d.event_date <= :as_of
    GROUP BY d.patient_key
), neuro_reports AS (
    SELECT
        s.patient_key, s.code, s.event_date, s.status,
        COALESCE(s.reporter, 'clinician') AS reporter,
        COALESCE(r.ends_neuro_loading, FALSE) AS ends_loading,
        b.judged_on, b.first_dose
    FROM symptoms AS s
    JOIN kb_symptom AS k ON k.code = s.code
    JOIN course_eff AS b ON b.patient_key = s.patient_key
    LEFT JOIN kb_reporter AS r ON r.code = COALESCE(s.reporter, 'clinician')
    WHERE k.neurological AND s.event_date <= :as_of
        AND b.loading_end = 'symptoms_stop_improving' AND b.first_dose IS NOT NULL
), neuro_status AS (
    -- each neurological symptom's status on the day loading is judged (the switch to longer
    -- intervals, else :as_of), same-day reports by precedence
    SELECT
        n.*,
        ROW_NUMBER() OVER (
            PARTITION BY n.patient_key, n.code
            ORDER BY CASE WHEN n.event_date <= n.judged_on THEN 0 ELSE 1 END,
                n.event_date DESC, st.precedence DESC, n.reporter DESC
        ) AS rn
    FROM neuro_reports AS n
    JOIN kb_status AS st ON st.status = n.status
), settled AS (
    -- loading may end on symptoms: every neurological symptom stable or resolved by a clinician's
    -- report, an improvement recorded after the first loading dose, and :neuro_loading_min_days
    -- since that dose
    SELECT
        patient_key,
        MIN(CASE WHEN rn = 1 THEN
                CASE WHEN event_date <= judged_on AND status IN ('stable', 'resolved')
                          AND ends_loading
                     THEN 1 ELSE 0 END
            END) = 1
        AND MAX(CASE WHEN event_date > first_dose AND event_date <= judged_on
                          AND status IN ('improving', 'resolved') THEN 1 ELSE 0 END) = 1
        AND MIN(DATE_DIFF('day', first_dose, judged_on)) >= :neuro_loading_min_days
            AS symptoms_settled
    FROM neuro_status
    GROUP BY patient_key
), neuro_now AS (
    -- on :as_of: every neurological symptom settled, whether a patient or carer settled one, a
    -- clinician's "stable" current, and any improvement since the first dose
    SELECT
        s.patient_key,
        MIN(CASE WHEN s.status IN ('stable', 'resolved') THEN 1 ELSE 0 END) = 1 AS all_settled,
        MAX(CASE WHEN s.status IN ('stable', 'resolved') AND NOT s.ends_loading
                 THEN 1 ELSE 0 END) = 1 AS settled_by_patient,
        MAX(CASE WHEN s.status = 'stable' AND s.ends_loading THEN 1 ELSE 0 END) = 1
            AS clinician_stable
    FROM symptom_status AS s
    JOIN course_eff AS b ON b.patient_key = s.patient_key
    WHERE s.neurological AND b.loading_end = 'symptoms_stop_improving'
    GROUP BY s.patient_key
), improved AS (
    SELECT DISTINCT n.patient_key
    FROM neuro_reports AS n
    WHERE n.event_date > n.first_dose AND n.status IN ('improving', 'resolved')
), allergic AS (
    -- injections on hold: an allergic reaction with no rechallenge_cleared decision since
    SELECT DISTINCT e.patient_key
    FROM adverse_events AS e
    JOIN kb_adverse_event AS k ON k.code = e.code AND k.kind = 'allergic'
    WHERE e.event_date <= :as_of
        AND NOT EXISTS (
            SELECT 1 FROM decisions AS d
            WHERE d.patient_key = e.patient_key AND d.code = 'rechallenge_cleared'
                AND d.event_date >= e.event_date AND d.event_date <= :as_of
        )
), interval_chosen AS (
    SELECT
        b.*,
        COALESCE(s.symptoms_settled, FALSE) AS symptoms_settled,
        nd.decided_on IS NOT NULL AND nd.decided_on <= b.judged_on AS decided_complete,
        COALESCE(nn.all_settled, FALSE) AS neuro_all_settled,
        COALESCE(nn.settled_by_patient, FALSE) AS neuro_settled_by_patient,
        COALESCE(nn.clinician_stable, FALSE) AS neuro_clinician_stable,
        im.patient_key IS NOT NULL AS neuro_improved,
        al.patient_key IS NOT NULL AS on_hold,
        CASE WHEN b.protocol_id IS NULL THEN NULL
             WHEN b.requested_days IS NULL OR b.requested_days > b.interval_max_days
                 THEN b.maintenance_due_days
             ELSE b.requested_days END AS interval_days,
        COALESCE(b.requested_days > b.interval_max_days, FALSE) AS interval_limited,
        -- a shorter prescribed interval scales the window (rounded half to even, as core does)
        CAST(b.requested_days AS BIGINT) * b.maintenance_overdue_days AS scaled_x,
        CAST(FLOOR(CAST(b.requested_days AS DOUBLE) * b.maintenance_overdue_days
                   / b.maintenance_due_days) AS BIGINT) AS scaled_q
    FROM course_eff AS b
    LEFT JOIN settled AS s ON s.patient_key = b.patient_key
    LEFT JOIN neuro_decision AS nd ON nd.patient_key = b.patient_key
    LEFT JOIN neuro_now AS nn ON nn.patient_key = b.patient_key
    LEFT JOIN improved AS im ON im.patient_key = b.patient_key
    LEFT JOIN allergic AS al ON al.patient_key = b.patient_key
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
            WHEN i.prior_loading_completed THEN TRUE
            WHEN i.first_dose IS NULL OR i.protocol_id IS NULL OR i.kind = 'oral' THEN FALSE
            WHEN i.loading_end = 'doses'
                THEN i.loading_run >= COALESCE(i.loading_doses_minimum, 0)
            ELSE i.decided_complete OR i.symptoms_settled
        END AS loading_complete
    FROM interval_chosen AS i
), phased AS (
    SELECT
        w.*,
        CASE
            WHEN w.oral THEN
                CASE WHEN w.rx_end IS NOT NULL AND w.rx_end <= :as_of THEN 'stopped'
                     ELSE 'maintenance' END
            WHEN w.first_dose IS NULL THEN
                CASE WHEN w.prior_loading_completed THEN 'maintenance' ELSE 'untreated' END
            WHEN w.rx_end IS NOT NULL AND w.rx_end <= :as_of THEN 'stopped'
            WHEN w.interval_days IS NOT NULL
                AND DATE_DIFF('day', w.last_dose, :as_of) > :stopped_factor * w.interval_days
                THEN 'stopped'
            WHEN w.loading_run < w.doses OR w.loading_complete THEN 'maintenance'
            ELSE 'loading'
        END AS phase
    FROM windowed AS w
), planned AS (
    SELECT
        p.*,
        p.protocol_id IS NOT NULL
            AND p.loading_run >= 2
            AND NOT p.loading_complete
            AND (p.loading_run < p.doses OR p.rx_phase = 'maintenance') AS loading_cut_short,
        st.due_days AS stage_due_days,  -- the interval of the loading stage the next dose is in
        st.overdue_days AS stage_overdue_days
    FROM phased AS p
    LEFT JOIN kb_loading_stage AS st
        ON st.protocol_id = p.protocol_id
        AND p.loading_run + 1 >= st.first_dose_no
        AND (st.last_dose_no IS NULL OR p.loading_run + 1 <= st.last_dose_no)
)
SELECT
    p.*,
    p.loading_end = 'symptoms_stop_improving' AND p.phase = 'loading' AND NOT p.loading_complete
        AND p.neuro_all_settled AND p.neuro_settled_by_patient AS neuro_review_due,
    p.loading_end = 'symptoms_stop_improving' AND p.phase = 'loading' AND NOT p.neuro_improved
        AND (DATE_DIFF('day', p.first_dose, :as_of) >= :neuro_no_response_days
             OR p.neuro_clinician_stable) AS neuro_no_response,
    CASE
        WHEN p.protocol_id IS NULL OR p.kind = 'oral' OR p.on_hold THEN NULL
        WHEN p.first_dose IS NULL THEN
            CASE WHEN p.prior_loading_completed THEN NULL
                 ELSE :as_of + CAST(p.first_dose_grace_days AS INTEGER) END
        WHEN p.phase = 'loading' AND p.catch_up AND p.stage_due_days IS NOT NULL
            AND p.last_dose + CAST(p.stage_due_days AS INTEGER) < :as_of
            THEN :as_of + CAST(p.first_dose_grace_days AS INTEGER)
        WHEN p.phase = 'loading' THEN p.last_dose
            + CAST(COALESCE(p.stage_overdue_days, p.maintenance_overdue_final) AS INTEGER)
        WHEN p.phase = 'maintenance'
            OR (p.phase = 'stopped' AND p.chronic AND p.lifelong_when_chronic)
            THEN p.last_dose + CAST(p.maintenance_overdue_final AS INTEGER)
    END AS overdue_after
FROM planned AS p
