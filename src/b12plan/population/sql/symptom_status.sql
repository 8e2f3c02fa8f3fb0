-- Each symptom's current status on :as_of, per patient (b12plan.core.facts.latest_symptom_status):
-- the latest report; of two reports on one day, the status later in the knowledge base's
-- precedence (the one that keeps treatment more intensive), whoever reported it. ``reporter`` is
-- the reporter of the report that counts; ``ends_loading`` whether that reporter's
-- stable/resolved may end neurological loading.
SELECT patient_key, code, event_date, status, reporter, ends_loading, neurological
FROM (
    SELECT
        s.patient_key, s.code, s.event_date, s.status,
        COALESCE(s.reporter, 'clinician') AS reporter,
        COALESCE(r.ends_neuro_loading, FALSE) AS ends_loading,
        k.neurological,
        ROW_NUMBER() OVER (
            PARTITION BY s.patient_key, s.code
            ORDER BY s.event_date DESC, st.precedence DESC, COALESCE(s.reporter, 'clinician') DESC
        ) AS rn
    FROM symptoms AS s
    JOIN kb_status AS st ON st.status = s.status
    JOIN kb_symptom AS k ON k.code = s.code
    LEFT JOIN kb_reporter AS r ON r.code = COALESCE(s.reporter, 'clinician')
    WHERE s.event_date <= :as_of
) AS ranked
WHERE rn = 1
