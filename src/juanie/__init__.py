"""Juanie: a self-hosted DevOps platform — from a git commit to production, kept healthy."""

__version__ = "0.1.0"
