"""Caller audio (probe, decode, encode) and SSRF-safe downloads."""
