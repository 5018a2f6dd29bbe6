"""The REST API: FastAPI routers, authentication and RBAC, request schemas, errors."""
