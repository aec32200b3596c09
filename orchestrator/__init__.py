"""The API process: app factory, settings, database, state machine, adapters, reconciler, CLI."""
