"""Controllers: level-triggered reconcile loops, their work queues, and the leader lease."""
