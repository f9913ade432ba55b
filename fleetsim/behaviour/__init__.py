"""Behaviour profiles: specs read from TOML files and the schedules they play."""
