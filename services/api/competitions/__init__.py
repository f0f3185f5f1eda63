"""Competitions: scores over periods from the stored call facts, live standings, frozen results
and announcements (`service.py` composes the pure `periods` and `scoring`)."""
