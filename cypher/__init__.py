"""Cypher statements shipped as package data (see README.md here)."""
