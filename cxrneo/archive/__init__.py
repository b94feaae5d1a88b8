"""The files a build makes and shares: codes files, edge files, shard specs, synthetic codes."""
