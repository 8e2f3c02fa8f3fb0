-- SYMPTOMS_RETURN_BEFORE_DOSE (NG239): in maintenance, a symptom that had improved (an earlier
-- report improving, stable or resolved) is reported present or worsening after loading, at least
-- :symptom_return_fraction of the maintenance interval after the dose before it: review, consider
-- more frequent injections (b12plan.core.rules.check_symptoms_return_before_dose,
-- _returning_symptom). Evidence: the report (first symptom code in order), days after the dose.
WITH ranked AS (
    SELECT
        s.patient_key, s.code, s.event_date, s.status, p.last_loading_dose, p.interval_days,
        -- two reports on one day: the more intensive status counts as the later
        ROW_NUMBER() OVER (
            PARTITION BY s.patient_key, s.code
            ORDER BY s.event_date DESC, st.precedence DESC,
                COALESCE(s.reporter, 'clinician') DESC
        ) AS rn,
        SUM(CASE WHEN s.status IN ('improving', 'stable', 'resolved') THEN 1 ELSE 0 END)
            OVER (PARTITION BY s.patient_key, s.code) AS improved_reports
    FROM symptoms AS s
    JOIN kb_status AS st ON st.status = s.status
    JOIN patient_state AS p ON p.patient_key = s.patient_key
    WHERE p.phase = 'maintenance' AND p.protocol_id IS NOT NULL
        AND p.last_loading_dose IS NOT NULL AND s.event_date <= :as_of
), returned AS (
    -- the current report present or worsening after loading, an earlier one improved (the
    -- current one is not among the improved reports)
    SELECT patient_key, code, event_date, last_loading_dose, interval_days
    FROM ranked
    WHERE rn = 1 AND status IN ('present', 'worsening') AND improved_reports > 0
        AND event_date > last_loading_dose
), after_dose AS (
    SELECT
        r.patient_key, r.code, r.event_date, r.last_loading_dose, r.interval_days,
        MAX(d.event_date) AS dose_date
    FROM returned AS r
    JOIN course_dose AS d ON d.patient_key = r.patient_key AND d.event_date <= r.event_date
    GROUP BY r.patient_key, r.code, r.event_date, r.last_loading_dose, r.interval_days
), qualifying AS (
    SELECT
        patient_key, code, event_date, DATE_DIFF('day', dose_date, event_date) AS days,
        ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY code) AS pick
    FROM after_dose
    WHERE dose_date >= last_loading_dose
        AND DATE_DIFF('day', dose_date, event_date) >= :symptom_return_fraction * interval_days
)
SELECT
    patient_key,
    event_date AS evidence_date,
    days AS evidence_days,
    CAST(NULL AS DOUBLE) AS evidence_value,
    code AS evidence_note
FROM qualifying
WHERE pick = 1
