-- INJECTION_SITE_REACTION (BNF): only local injection-site effects were recorded
-- (b12plan.core.rules.check_injection_site_reaction).
SELECT
    e.patient_key,
    MAX(e.event_date) AS evidence_date,
    CAST(NULL AS BIGINT) AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    MAX(e.code) AS evidence_note
FROM adverse_events AS e
JOIN kb_adverse_event AS k ON k.code = e.code
WHERE e.event_date <= :as_of
GROUP BY e.patient_key
HAVING SUM(CASE WHEN k.kind = 'local' THEN 0 ELSE 1 END) = 0
