"""Engines run rendered manifests: the local engine on this host, the Kubernetes engine on a cluster."""
