"""Several stratexec processes on one PostgreSQL database: who leads the projections, who
owns which execution, and how the processes wake each other (LISTEN/NOTIFY)."""
