-- The booking list: patients whose next dose (core's Assessment.next_dose, patient_state.next_due)
-- falls due on :as_of or within the next :due_within_days days. A dose already past its due day
-- is not listed (past its window it is INJECTION_OVERDUE on the worklist); deceased patients
-- never are. Columns are cast to the booking schema (b12plan.population.tables.DUE_SCHEMA).
SELECT
    CAST(s.patient_key AS BIGINT) AS patient_key,
    CAST(p.patient_id AS VARCHAR) AS patient_id,
    CAST(p.clinic_id AS VARCHAR) AS clinic_id,
    CAST(s.next_due AS DATE) AS due,
    CAST(s.next_earliest AS DATE) AS earliest,
    CAST(s.overdue_after AS DATE) AS overdue_after,
    CAST(s.phase AS VARCHAR) AS phase,
    CAST(s.protocol_id AS VARCHAR) AS protocol_id
FROM patient_state AS s
JOIN patients AS p ON p.patient_key = s.patient_key
WHERE s.next_due IS NOT NULL
    AND s.next_due >= :as_of
    AND s.next_due <= :as_of + CAST(:due_within_days AS INTEGER)
    AND (p.deceased_date IS NULL OR p.deceased_date > :as_of)
