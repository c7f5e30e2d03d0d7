"""Pure domain model: entities, value objects and domain errors (standard library only)."""
