"""Adapters: what PBXs and contact centers already write, turned into canonical events."""
