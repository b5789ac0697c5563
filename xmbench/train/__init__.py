"""Train stage: the engine loop, losses, schedules and the cached foundation pretraining."""
