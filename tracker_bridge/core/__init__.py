"""The pure policy engine: business calendars, classification, SLA clocks with pauses,
at-risk and breach states, escalation, KB notes with patient-data redaction.

No I/O and no clock reads (``now`` is passed in); it imports nothing of the package outside
``core`` (checked by import-linter, see pyproject.toml).
"""
