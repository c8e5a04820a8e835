"""The Train step: settings, live curves, the log and the run list."""
