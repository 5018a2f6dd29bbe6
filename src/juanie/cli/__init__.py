"""The command line: Typer commands that talk to the API, like kubectl and argocd do."""
