"""The pure model of stratexec: strategies, plans, executions, health and retries.

Nothing here does I/O except `application.py`, the eventsourcing Application that stores
the aggregates; everything else is plain Python that the tests build and check directly.
"""
