-- INTERVAL_LONGER_THAN_PROTOCOL (NG239, BNF, US label): the prescribed maintenance interval is
-- longer than the protocol's range allows; the protocol's interval is used instead
-- (b12plan.core.rules.check_interval_longer_than_protocol, plan.maintenance_interval).
SELECT
    patient_key,
    rx_start AS evidence_date,
    CAST(rx_interval_days AS BIGINT) AS evidence_days,
    CAST(interval_max_days AS DOUBLE) AS evidence_value,
    protocol_id AS evidence_note
FROM patient_state
WHERE protocol_id IS NOT NULL AND interval_limited
