"""Adapters to the outside world, each behind a narrow Protocol listing only the calls used."""
