"""The web UI: server-rendered pages with live updates over SSE, served by the Juanie server itself."""
