"""Helpers the tests share: network namespaces, nodes with private mount namespaces, daemons."""
