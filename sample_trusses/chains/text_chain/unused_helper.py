"""Not imported by the chain: `pack chains render` leaves it out of every chainlet."""

BIG_TABLE = list(range(10))
