"""Read models rebuilt from the event log, each tracked by position, applied exactly once."""
