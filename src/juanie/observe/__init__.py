"""Observe: metrics (store, scrape, queries), alerts (rules, routing, silences) and notifiers."""
