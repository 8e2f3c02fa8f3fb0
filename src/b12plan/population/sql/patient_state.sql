-- One row per patient: loading progress, maintenance interval, phase and the next dose's
-- overdue date (b12plan.core.evaluate.build_context and _phase; b12plan.core.plan.loading_state,
-- neuro_loading_end, maintenance_interval, window_after, catch_up_window). Windows are anchored
-- on the last valid dose. Loading completed elsewhere makes every recorded dose maintenance;
-- treatment begun at a maintenance interval less than :catch_up_window_days ago catches up with
-- the loading course (every valid dose counts as loading); an allergic reaction with no
-- rechallenge_cleared decision since puts injections on hold (no next dose); an oral protocol has
-- no injection plan. Judgements several rules share: treatment began at a maintenance interval
-- (b12plan.core.rules._maintenance_without_loading), loading moved to longer intervals before it
-- was complete (_loading_cut_short), and the neurological loading questions
-- (plan.patient_reported_settled, plan.no_improvement_recorded).
WITH neuro_decision AS (
    SELECT b.patient_key, MIN(d.event_date) AS decided_on
    FROM decisions AS d
    JOIN patient_course AS b ON b.patient_key = d.patient_key
    WHERE d.code = 'neuro_loading_complete' AND d.event_date <= :as_of
        AND d.event_date >= b.first_dose AND d.event_date <= b.judged_on
    GROUP BY b.patient_key
), neuro_reports AS (
    SELECT
        s.patient_key, s.code, s.event_date, s.status,
        COALESCE(s.reporter, 'clinician') AS reporter,
        COALESCE(r.ends_neuro_loading, FALSE) AS by_clinician,
        st.precedence,
        s.status IN ('stable', 'resolved') AS settled,
        b.judged_on, b.first_dose
    FROM symptoms AS s
    JOIN kb_symptom AS k ON k.code = s.code
    JOIN kb_status AS st ON st.status = s.status
    JOIN patient_course AS b ON b.patient_key = s.patient_key
    LEFT JOIN kb_reporter AS r ON r.code = COALESCE(s.reporter, 'clinician')
    WHERE k.neurological AND s.event_date <= :as_of
        AND b.loading_end = 'symptoms_stop_improving' AND b.first_dose IS NOT NULL
), neuro_codes AS (
    -- per neurological symptom, on the judging day and on :as_of: the current status, the last
    -- unsettled report and the last clinician's settled report (plan._clinician_settled_on)
    SELECT
        patient_key, code,
        MAX(CASE WHEN rn_judged = 1 AND event_date <= judged_on AND settled THEN 1 ELSE 0 END)
            AS settled_judged,
        MAX(CASE WHEN event_date <= judged_on AND NOT settled THEN event_date END)
            AS unsettled_judged,
        MAX(CASE WHEN event_date <= judged_on AND settled AND by_clinician THEN event_date END)
            AS clinician_judged,
        MAX(CASE WHEN rn_now = 1 AND settled THEN 1 ELSE 0 END) AS settled_now,
        MAX(CASE WHEN rn_now = 1 AND status = 'stable' AND by_clinician THEN 1 ELSE 0 END)
            AS clinician_stable_now,
        MAX(CASE WHEN NOT settled THEN event_date END) AS unsettled_now,
        MAX(CASE WHEN settled AND by_clinician THEN event_date END) AS clinician_now,
        MAX(CASE WHEN settled AND NOT by_clinician THEN 1 ELSE 0 END) AS patient_settled_ever
    FROM (
        SELECT
            n.*,
            ROW_NUMBER() OVER (
                PARTITION BY n.patient_key, n.code
                ORDER BY CASE WHEN n.event_date <= n.judged_on THEN 0 ELSE 1 END,
                    n.event_date DESC, n.precedence DESC, n.reporter DESC
            ) AS rn_judged,
            ROW_NUMBER() OVER (
                PARTITION BY n.patient_key, n.code
                ORDER BY n.event_date DESC, n.precedence DESC, n.reporter DESC
            ) AS rn_now
        FROM neuro_reports AS n
    ) AS ranked
    GROUP BY patient_key, code
), neuro_judged AS (
    SELECT
        c.patient_key,
        -- every neurological symptom judged stable/resolved by a clinician after its last
        -- unsettled report, on the judging day
        MIN(CASE WHEN c.settled_judged = 1 AND c.clinician_judged IS NOT NULL
                      AND (c.unsettled_judged IS NULL OR c.clinician_judged > c.unsettled_judged)
                 THEN 1 ELSE 0 END) = 1 AS clinician_settled_judged,
        MIN(c.settled_now) = 1 AS all_settled_now,
        -- on :as_of, a symptom settled only on a patient's or carer's word
        MAX(CASE WHEN NOT (c.clinician_now IS NOT NULL
                           AND (c.unsettled_now IS NULL OR c.clinician_now > c.unsettled_now))
                      AND c.patient_settled_ever = 1
                 THEN 1 ELSE 0 END) = 1 AS patient_settled_now,
        MAX(c.clinician_stable_now) = 1 AS clinician_stable_now
    FROM neuro_codes AS c
    GROUP BY c.patient_key
), improvement AS (
    -- the first improvement (improving or resolved) of a neurological symptom after the first
    -- dose: by the judging day, and by :as_of
    SELECT
        patient_key,
        MAX(CASE WHEN event_date <= judged_on THEN 1 ELSE 0 END) = 1 AS improved_judged,
        TRUE AS improved_now
    FROM neuro_reports
    WHERE event_date > first_dose AND status IN ('improving', 'resolved')
    GROUP BY patient_key
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
        nd.decided_on IS NOT NULL AS decided_complete,
        COALESCE(nj.clinician_settled_judged, FALSE) AND COALESCE(im.improved_judged, FALSE)
            AND DATE_DIFF('day', b.first_dose, b.judged_on) >= :neuro_loading_min_days
            AS symptoms_settled,
        COALESCE(nj.all_settled_now AND nj.patient_settled_now, FALSE)
            AS neuro_settled_by_patient,
        COALESCE(nj.clinician_stable_now, FALSE) AS neuro_clinician_stable,
        COALESCE(im.improved_now, FALSE) AS neuro_improved,
        al.patient_key IS NOT NULL AS on_hold,
        CASE WHEN b.protocol_id IS NULL THEN NULL
             WHEN b.requested_days IS NULL OR b.requested_days > b.interval_max_days
                 THEN b.maintenance_due_days
             ELSE b.requested_days END AS interval_days,
        COALESCE(b.requested_days > b.interval_max_days, FALSE) AS interval_limited,
        -- a shorter prescribed interval scales the window (rounded half to even, as core does)
        CAST(b.requested_days AS BIGINT) * b.maintenance_overdue_days AS scaled_x,
        CAST(FLOOR(CAST(b.requested_days AS DOUBLE) * b.maintenance_overdue_days
                   / b.maintenance_due_days) AS BIGINT) AS scaled_q,
        -- the same scaling for the earliest day (plan.maintenance_interval's min_interval_days)
        CAST(b.requested_days AS BIGINT) * b.maintenance_min_days AS scaled_min_x,
        CAST(FLOOR(CAST(b.requested_days AS DOUBLE) * b.maintenance_min_days
                   / b.maintenance_due_days) AS BIGINT) AS scaled_min_q
    FROM patient_course AS b
    LEFT JOIN neuro_decision AS nd ON nd.patient_key = b.patient_key
    LEFT JOIN neuro_judged AS nj ON nj.patient_key = b.patient_key
    LEFT JOIN improvement AS im ON im.patient_key = b.patient_key
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
            WHEN i.protocol_id IS NULL THEN NULL
            WHEN i.requested_days IS NULL OR i.requested_days > i.interval_max_days
                OR i.requested_days = i.maintenance_due_days THEN i.maintenance_min_days
            ELSE GREATEST(
                1,
                i.scaled_min_q + CASE
                    WHEN 2 * (i.scaled_min_x - i.scaled_min_q * i.maintenance_due_days)
                        > i.maintenance_due_days THEN 1
                    WHEN 2 * (i.scaled_min_x - i.scaled_min_q * i.maintenance_due_days)
                        = i.maintenance_due_days THEN i.scaled_min_q % 2
                    ELSE 0 END)
        END AS maintenance_min_final,
        CASE
            WHEN i.protocol_id IS NULL THEN FALSE
            WHEN i.prior_loading_completed THEN TRUE
            WHEN i.oral_protocol OR i.first_dose IS NULL THEN FALSE
            WHEN i.loading_end = 'doses'
                THEN i.loading_counted >= COALESCE(i.loading_doses_minimum, 0)
            ELSE i.decided_complete OR i.symptoms_settled
        END AS loading_complete
    FROM interval_chosen AS i
), phased AS (
    SELECT
        w.*,
        w.rx_end IS NOT NULL AND w.rx_end <= :as_of AS order_ended,
        CASE
            WHEN w.oral_protocol THEN
                CASE WHEN w.rx_end IS NOT NULL AND w.rx_end <= :as_of THEN 'stopped'
                     WHEN w.rx_start IS NOT NULL OR w.oral_given THEN 'maintenance'
                     ELSE 'untreated' END
            WHEN w.first_dose IS NULL THEN
                CASE WHEN w.prior_loading_completed
                          AND NOT (w.rx_end IS NOT NULL AND w.rx_end <= :as_of)
                     THEN 'maintenance' ELSE 'untreated' END
            WHEN w.rx_end IS NOT NULL AND w.rx_end <= :as_of THEN 'stopped'
            WHEN w.interval_days IS NOT NULL
                AND DATE_DIFF('day', w.last_dose, :as_of) > :stopped_factor * w.interval_days
                THEN 'stopped'
            WHEN w.loading_complete OR (w.moved_to_maintenance AND NOT w.catch_up)
                THEN 'maintenance'
            ELSE 'loading'
        END AS phase
    FROM windowed AS w
), planned AS (
    SELECT
        p.*,
        p.protocol_id IS NOT NULL AND NOT p.oral_protocol
            AND p.loading_run >= 2
            AND NOT p.loading_complete
            AND (p.moved_to_maintenance OR p.rx_phase = 'maintenance') AS loading_cut_short,
        -- the loading stage the next dose is in
        st.min_days AS stage_min_days,
        st.due_days AS stage_due_days,
        st.overdue_days AS stage_overdue_days,
        CASE WHEN st.protocol_id IS NOT NULL THEN st.overdue_days - st.due_days
             ELSE p.maintenance_overdue_final - p.interval_days END AS stage_grace_days,
        CASE WHEN p.protocol_id IS NOT NULL THEN
            COALESCE(st.due_days, p.interval_days) END AS next_due_days
    FROM phased AS p
    LEFT JOIN kb_loading_stage AS st
        ON st.protocol_id = p.protocol_id
        AND p.loading_counted + 1 >= st.first_dose_no
        AND (st.last_dose_no IS NULL OR p.loading_counted + 1 <= st.last_dose_no)
), neuro_flags AS (
    SELECT
        p.*,
        p.protocol_id IS NOT NULL AND p.loading_end = 'symptoms_stop_improving'
            AND p.phase = 'loading' AND p.first_dose IS NOT NULL AS neuro_loading
    FROM planned AS p
)
-- only the columns the rules read: every reader of a shared step pays for its width
SELECT
    p.patient_key, p.jurisdiction, p.sex, p.out_of_scope, p.chronic, p.malabsorptive,
    p.pregnant, p.pregnant_or_breastfeeding, p.known_cause, p.risk_factor_medication,
    p.nitrous_oxide, p.neurological, p.neuro_unresolved, p.rx_product, p.rx_dose_mcg,
    p.rx_phase, p.rx_interval_days, p.rx_start, p.rx_end, p.doses, p.first_dose, p.last_dose,
    p.prior_loading_completed, p.oral, p.dose_in_use_mcg, p.last_follow_up_date, p.hb_at_start,
    p.hb_reference_low, p.macrocytic_at_start, p.deficiency, p.anaemic_at_start,
    p.confirmatory_test_needed, p.indicated, p.protocol_id, p.kind, p.loading_doses_minimum,
    p.dietary_rule, p.maintenance_due_days, p.interval_max_days, p.oral_protocol,
    p.maintenance_without_loading, p.loading_run, p.last_loading_dose, p.first_maintenance_dose,
    p.moved_to_maintenance, p.judged_on, p.first_treatment, p.neuro_clinician_stable, p.on_hold, p.interval_days,
    p.interval_limited, p.loading_complete, p.phase, p.loading_cut_short, p.stage_due_days,
    p.neuro_loading AND p.neuro_settled_by_patient AS neuro_review_due,
    p.neuro_loading AND NOT p.neuro_improved
        AND (DATE_DIFF('day', p.first_dose, :as_of) >= :neuro_no_response_days
             OR p.neuro_clinician_stable) AS neuro_no_response,
    CASE
        WHEN p.protocol_id IS NULL OR p.oral_protocol OR p.on_hold THEN NULL
        WHEN p.first_dose IS NULL THEN
            CASE WHEN p.prior_loading_completed THEN NULL
                 ELSE :as_of + CAST(p.first_dose_grace_days AS INTEGER) END
        WHEN p.phase = 'loading' AND p.catch_up
            AND p.last_dose + CAST(p.next_due_days AS INTEGER) < :as_of
            THEN :as_of + CAST(p.stage_grace_days AS INTEGER)
        WHEN p.phase = 'loading' THEN p.last_dose
            + CAST(COALESCE(p.stage_overdue_days, p.maintenance_overdue_final) AS INTEGER)
        WHEN p.phase = 'maintenance'
            OR (p.phase = 'stopped' AND p.chronic AND p.lifelong_when_chronic)
            THEN p.last_dose + CAST(p.maintenance_overdue_final AS INTEGER)
    END AS overdue_after,
    -- the next dose's due and earliest days, by the same branches as overdue_after (first dose
    -- and a catch-up whose window has passed: due now)
    CASE
        WHEN p.protocol_id IS NULL OR p.oral_protocol OR p.on_hold THEN NULL
        WHEN p.first_dose IS NULL THEN
            CASE WHEN p.prior_loading_completed THEN NULL ELSE :as_of END
        WHEN p.phase = 'loading' AND p.catch_up
            AND p.last_dose + CAST(p.next_due_days AS INTEGER) < :as_of THEN :as_of
        WHEN p.phase = 'loading' THEN p.last_dose + CAST(p.next_due_days AS INTEGER)
        WHEN p.phase = 'maintenance'
            OR (p.phase = 'stopped' AND p.chronic AND p.lifelong_when_chronic)
            THEN p.last_dose + CAST(p.interval_days AS INTEGER)
    END AS next_due,
    CASE
        WHEN p.protocol_id IS NULL OR p.oral_protocol OR p.on_hold THEN NULL
        WHEN p.first_dose IS NULL THEN
            CASE WHEN p.prior_loading_completed THEN NULL ELSE :as_of END
        WHEN p.phase = 'loading' AND p.catch_up
            AND p.last_dose + CAST(p.next_due_days AS INTEGER) < :as_of THEN :as_of
        WHEN p.phase = 'loading' THEN p.last_dose
            + CAST(COALESCE(p.stage_min_days, p.maintenance_min_final) AS INTEGER)
        WHEN p.phase = 'maintenance'
            OR (p.phase = 'stopped' AND p.chronic AND p.lifelong_when_chronic)
            THEN p.last_dose + CAST(p.maintenance_min_final AS INTEGER)
    END AS next_earliest
FROM neuro_flags AS p
