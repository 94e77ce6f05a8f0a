"""The live side of a server: one writer per election, versioned cached snapshots, SSE broadcast."""
