"""Signals other apps listen to (settlement, grid)."""

from django.dispatch import Signal

# Sent (sender: the Meter class) after commit when the stored energy of intervals changed: an estimate replaced by
# measured values, or a gap re-estimated around a late reading. Keyword arguments:
# ``meter_ids`` and ``interval_starts``, two lists of equal length (pair k names one
# interval of one meter). Settlement re-settles the members and intervals concerned as a
# correction; the same changes are kept in ``IntervalCorrection`` for consumers that poll
# (``selectors.interval_corrections_since``). First-time values are not signalled.
interval_energy_changed = Signal()
