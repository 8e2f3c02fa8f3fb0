-- STOPPED_LIFELONG_THERAPY (NG239): a chronic cause, and injections have stopped: the order
-- has ended, or no injection for more than :stopped_factor maintenance intervals
-- (b12plan.core.rules.check_stopped_lifelong_therapy, b12plan.core.evaluate._phase). Not while
-- injections are on hold after an allergic reaction: restarting would contradict the hold.
SELECT
    patient_key,
    last_dose AS evidence_date,
    DATE_DIFF('day', last_dose, :as_of) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    CASE WHEN rx_end IS NOT NULL AND rx_end <= :as_of THEN 'order ended'
         ELSE 'no recent injection' END AS evidence_note
FROM patient_state
WHERE chronic AND phase = 'stopped' AND NOT on_hold
