"""Fleet monitoring: collectors, storage with rollups, alerts, Prometheus exposition."""
