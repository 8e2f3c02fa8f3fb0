-- ALLERGIC_REACTION (US label, BNF): an allergic reaction or anaphylaxis was recorded; stop,
-- escalate, record (b12plan.core.rules.check_allergic_reaction). Evidence: the latest one.
SELECT
    e.patient_key,
    MAX(e.event_date) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    MAX(e.code) AS evidence_note
FROM adverse_events AS e
JOIN kb_adverse_event AS k ON k.code = e.code
WHERE k.kind = 'allergic' AND e.event_date <= :as_of
GROUP BY e.patient_key
