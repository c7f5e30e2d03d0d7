"""Use cases and the ports (repositories, unit of work, hasher, tokens, clock) they depend on."""
