"""VIP resource: the group's address on this node's interface, announced with gratuitous ARP.

Before the group's first resource starts (:meth:`Vip.preflight`, before the volume is mounted),
duplicate address detection asks the network whether anyone already answers for the address
(``arping -0``: probes from 0.0.0.0, so no neighbour cache is poisoned; rc 0 when a reply came).
Debian's arping is Thomas Habets' 2.23 (docs/lab.md sections 2 and 9): the interface is ``-i``, a
gratuitous announcement needs ``-U -S VIP`` and returns 1 because nobody replies.
When the check itself cannot run (no arping, no interface), the address is not added.  An IPv6 VIP
is added without these ARP steps (the kernel's own duplicate address detection applies).  Whether
the address is there is read in-process (:mod:`gardien.node.addresses`, as the exporter reads it);
``ip addr add/del`` only act.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading

from failover_hook.resources.base import (
    RUNNING,
    Resource,
    ResourceError,
    ResourceState,
    State,
)
from failover_hook.resources.registry import BuildContext, register
from gardien.command_runner import CommandRunner
from gardien.config.model import GroupConfig, VipConfig
from gardien.node.addresses import ReadAddresses, has_interface, on_interface, read_addresses
from gardien.polling import Deadline

log = logging.getLogger(__name__)

DAD_ARGS = ("-0", "-c", "3", "-W", "0.03", "-w", "0.1")
"""Three probes 30 ms apart, 0.1 s in all: a holder on the segment answers within a millisecond
(its kernel does, even with its processes frozen; 9.6 ms at worst in 2000 answers on a loaded
machine, ``benchmarks/arp_check.py``), so the first probe's answer has ten times that; the other
two cover lost frames.  0.2 s less of every acquire than 0.1 s apart in 0.3 s."""
_COMMAND_TIMEOUT = 5.0
_MAC = re.compile(r"bytes from ([0-9a-f:]{17})")
_ANNOUNCING: dict[tuple[str, str], threading.Event] = {}
"""Announcements under way, by (interface, address): a stop cancels them."""
_ANNOUNCING_LOCK = threading.Lock()


class Vip(Resource):
    kind = "vip"

    def __init__(
        self, config: VipConfig, runner: CommandRunner, addresses: ReadAddresses = read_addresses
    ) -> None:
        super().__init__(runner)
        self.config = config
        self.address = config.address
        self.interface = config.interface
        self.addresses = addresses
        self._checked_free = False
        """The preflight found nobody answering: the start of this acquire need not ask again."""

    @property
    def name(self) -> str:
        return f"vip {self.address}"

    @property
    def start_timeout(self) -> float:
        return 10.0

    @property
    def stop_timeout(self) -> float:
        return 10.0

    def _addresses(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        try:
            table = self.addresses()
        except OSError as exc:
            raise ResourceError(
                f"cannot list the addresses of {self.interface}: {exc.strerror or exc}"
            ) from exc
        if not has_interface(self.interface, table):
            raise ResourceError(f"cannot list the addresses of {self.interface}: no such interface")
        return on_interface(self.interface, table)

    def monitor(self) -> ResourceState:
        try:
            present = self._addresses()
        except ResourceError as exc:
            return ResourceState(State.ERROR, str(exc))
        if self.address in present:
            return RUNNING
        if any(a.ip == self.address.ip for a in present):
            return ResourceState(
                State.ERROR, f"{self.address.ip} is on {self.interface} with another prefix length"
            )
        return ResourceState(State.NOT_RUNNING, f"{self.address} not on {self.interface}")

    def _duplicate(self, deadline: Deadline) -> str | None:
        """The MAC that answers for the address, or None when nobody does."""
        result = self.runner.run(
            ["arping", *DAD_ARGS, "-i", self.interface, str(self.address.ip)],
            timeout=min(_COMMAND_TIMEOUT, deadline.left(1)),
        )
        mac = _MAC.search(result.stdout)
        if result.returncode == 0 and mac:
            return mac.group(1)
        if result.returncode == 1 and ("unanswered" in result.stdout):
            return None
        raise ResourceError(f"cannot check whether {self.address.ip} is free: {result.describe()}")

    def _refuse_duplicate(self, deadline: Deadline) -> None:
        owner = self._duplicate(deadline)
        if owner:
            raise ResourceError(
                f"refusing to add {self.address}: {self.address.ip} already "
                f"answers on the network (MAC {owner})"
            )

    def preflight(self) -> None:
        """The duplicate-address check, before anything of the group starts (nothing to check
        when the address is already here: its start has nothing to do)."""
        current = self.monitor()
        if current.running:
            return
        if current.state is State.ERROR:
            raise ResourceError(f"refusing to add {self.address}: {current.reason}")
        if self.address.version == 4:
            self._refuse_duplicate(Deadline(self.start_timeout))
            self._checked_free = True

    def _start(self, deadline: Deadline, current: ResourceState) -> str:
        if current.state is State.ERROR:
            raise ResourceError(f"refusing to add {self.address}: {current.reason}")
        ipv4 = self.address.version == 4
        if ipv4 and not self._checked_free:
            self._refuse_duplicate(deadline)
        result = self.runner.run(
            ["ip", "addr", "add", str(self.address), "dev", self.interface],
            timeout=min(_COMMAND_TIMEOUT, deadline.left(1)),
        )
        if not result.ok:
            raise ResourceError(f"adding {self.address} failed: {result.describe()}")
        if ipv4:
            self._announce()
        return f"added {self.address} on {self.interface}"

    def _announce(self) -> None:
        """Gratuitous ARP so neighbours forget the old node's MAC, in the background (IPaddr2's
        ``arp_bg``): the group's services start meanwhile instead of waiting for the repeats.

        A thread of its own, not a daemon one: a short-lived process (the CLI) still sends them
        all before it exits.  A stop of the address cancels what is left of them.
        """
        cancel = threading.Event()
        with _ANNOUNCING_LOCK:
            previous = _ANNOUNCING.get(self._key)
            if previous is not None:
                previous.set()
            _ANNOUNCING[self._key] = cancel
        threading.Thread(
            target=self._send_announcements, args=(cancel,), name=f"garp {self.address.ip}"
        ).start()

    @property
    def _key(self) -> tuple[str, str]:
        return (self.interface, str(self.address.ip))

    def _send_announcements(self, cancel: threading.Event) -> None:
        ip = str(self.address.ip)
        argv = ["arping", "-q", "-U", "-S", ip, "-i", self.interface, "-c", "1", "-w", "0", ip]
        try:
            for i in range(self.config.garp_count):
                if (i and cancel.wait(self.config.garp_interval)) or cancel.is_set():
                    return
                result = self.runner.run(argv, timeout=_COMMAND_TIMEOUT)
                if result.returncode not in (0, 1):  # 1 is normal: nobody replies
                    log.warning("gratuitous ARP for %s failed: %s", ip, result.describe())
        finally:
            with _ANNOUNCING_LOCK:
                if _ANNOUNCING.get(self._key) is cancel:
                    del _ANNOUNCING[self._key]

    def _cancel_announcements(self) -> None:
        with _ANNOUNCING_LOCK:
            cancel = _ANNOUNCING.pop(self._key, None)
        if cancel is not None:
            cancel.set()

    def _stop(self, deadline: Deadline) -> str:
        self._cancel_announcements()  # the address is leaving: no more "it is here" for it
        result = self.runner.run(
            ["ip", "addr", "del", str(self.address), "dev", self.interface],
            timeout=min(_COMMAND_TIMEOUT, deadline.left(1)),
        )
        if not result.ok and self.monitor().state is not State.NOT_RUNNING:
            raise ResourceError(f"removing {self.address} failed: {result.describe()}")
        return f"removed {self.address} from {self.interface}"


@register("vip")
def _build(group: GroupConfig, context: BuildContext) -> list[Resource]:
    return [Vip(group.vip, context.runner)] if group.vip else []
