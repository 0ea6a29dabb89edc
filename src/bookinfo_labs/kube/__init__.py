"""The kube backend: the same Mesh verbs against a real cluster."""
