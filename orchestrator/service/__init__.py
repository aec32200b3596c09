"""Use cases: the I/O around the pure decisions, called by the thin API controllers."""
