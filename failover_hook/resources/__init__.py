"""Resource kinds of a group (volume, VIP, service), each behind the contract of :mod:`.base`."""
