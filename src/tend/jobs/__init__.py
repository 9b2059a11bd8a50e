"""Background jobs: one interface; an embedded runner by default, Celery workers at scale."""
