"""miil core."""
