"""Alerting: rules on the metric registry, states with history, silences and notifications."""
