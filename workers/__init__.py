"""Agent work on Celery workers: where an attempt runs, beside which handler runs it.

`stratexec worker` (`workers.worker`) runs a Celery worker whose one task, `stratexec.attempt`
(`workers.task`), runs the configured handler of an attempt's agent type; an engine started
with `--agents-on celery` sends its attempts there (`workers.dispatch`) instead of running
them on its own threads. The two sides share `workers.connection` (the broker, the result
backend, the queue names) and `workers.wire` (what a message and a report hold).
"""
