-- NEURO_UNDERTREATED (NG239, BNF): a neurological symptom is not resolved on :as_of, treatment is
-- indicated, and the regimen is less intensive than neurological involvement needs: no treatment
-- yet, an oral regimen, injections on hold after an allergic reaction, injections stopped, treatment began at a maintenance interval, loading moved to longer
-- intervals before symptoms stopped improving, the loading course lapsed, a loading order spaced
-- wider than its stage, or a maintenance order longer than the protocol allows
-- (b12plan.core.rules.check_neuro_undertreated, _undertreatment_reason). Evidence: the first
-- reason that applies, in core's order.
WITH judged AS (
    SELECT
        p.patient_key, p.last_dose, p.overdue_after, p.rx_start, p.rx_interval_days,
        CASE
            WHEN p.oral_protocol THEN 'the regimen is oral: neurological involvement needs injections'
            WHEN p.on_hold THEN 'injections are on hold after an allergic reaction'
            WHEN p.first_dose IS NULL THEN 'no treatment has started'
            WHEN p.phase = 'stopped' THEN 'injections have stopped'
            WHEN p.protocol_id IS NULL THEN NULL
            WHEN p.maintenance_without_loading THEN 'treatment began at a maintenance interval'
            WHEN p.loading_cut_short
                THEN 'loading moved to longer intervals before symptoms stopped improving'
            WHEN p.phase = 'loading' AND :as_of > p.overdue_after
                THEN 'the loading course has lapsed'
            WHEN p.phase = 'loading' AND p.rx_phase = 'loading'
                AND p.rx_interval_days > p.stage_due_days
                THEN 'the loading interval is longer than the stage allows'
            WHEN p.interval_limited
                THEN 'the maintenance interval is longer than the protocol allows'
        END AS reason
    FROM patient_state AS p
    WHERE p.indicated AND p.neuro_unresolved
)
SELECT
    patient_key,
    CASE
        WHEN reason = 'injections have stopped' THEN last_dose
        WHEN reason = 'the loading course has lapsed' THEN overdue_after
        WHEN reason LIKE 'the % interval is longer %' THEN rx_start
    END AS evidence_date,
    CASE
        WHEN reason LIKE 'the % interval is longer %' THEN CAST(rx_interval_days AS BIGINT)
    END AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    reason AS evidence_note
FROM judged
WHERE reason IS NOT NULL
