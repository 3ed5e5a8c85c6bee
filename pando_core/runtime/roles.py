"""The two roles of a pando process in a working directory."""

PRIMARY = "primary"  # holds the lock, owns the database read-write, serves the bus
SECONDARY = "secondary"  # reads the database read-only, sends its writes to the primary
