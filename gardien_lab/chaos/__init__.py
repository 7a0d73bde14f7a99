"""``gardien lab chaos``: random faults on the lab, audited by a checker that trusts no gardien
report.

:mod:`~gardien_lab.chaos.kinds` draws and injects the faults, :mod:`~gardien_lab.chaos.watch`
samples every node's mount table and addresses, :mod:`~gardien_lab.chaos.writers` commits rows and
files through the VIPs, :mod:`~gardien_lab.chaos.campaign` runs the trials and checks the
invariants, :mod:`~gardien_lab.chaos.report` tells the result (docs/chaos.md).
"""
