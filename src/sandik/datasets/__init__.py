"""Builders and importers that turn real election data (../shared/data) into sandik elections."""
