"""The pure core: lifecycles, RBAC rules, environment defaults, event kinds, user-facing errors."""
