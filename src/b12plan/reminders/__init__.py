"""Patient reminders: the plan (pure, from the assessment), the outbox, email and the calendar feed.

``plan`` and ``knowledge`` import only the standard library and ``b12plan.core``; the outbox,
mailer and runner are adapters over the store and the service layer.
"""
