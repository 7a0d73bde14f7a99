"""keepalived on the peers' lab: an Apache on each node, the VIP moved by VRRP.

As measured for docs/lab.md section 10 (its first keepalived row): a ``vrrp_script`` fetching
the page every 1 s with curl's own 1 s limit, ``fall 2``, ``rise 2``, ``weight 0`` (a failing
check puts the instance in FAULT: the VIP leaves at once and a priority-0 advert tells the peer);
pr-a priority 150, pr-b 100, adverts every 1 s, preemption on (a recovered pr-a takes the VIP
back).  keepalived moves only the address: each node serves its own copy of the page, no volume.
"""

from __future__ import annotations

from benchmarks.peers.lab import NODES, VIP, PeersLab, apache_of_node, node_dir, pages, undo
from gardien.polling import wait_until
from gardien_lab.daemons import apache

NAME = "keepalived"
PRIORITY = {"pr-a": 150, "pr-b": 100}


def config_text(node: str) -> str:
    return f"""global_defs {{
  router_id {node}
  script_user root
}}
vrrp_script chk_web {{
  script "/usr/bin/curl -fs -m 1 -o /dev/null http://127.0.0.1/"
  interval 1
  fall 2
  rise 2
  weight 0
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 98
  priority {PRIORITY[node]}
  advert_int 1
  virtual_ipaddress {{
    {VIP} dev eth0
  }}
  track_script {{
    chk_web
  }}
}}
"""


def start_apache(lab: PeersLab, node: str) -> None:
    inst = apache_of_node(node)
    lab.run(node, apache.start_argv(inst))
    apache.wait_until_ready(inst, prefix=lab.prefix(node))


def start(lab: PeersLab, monitors: str = "") -> None:
    """Apache on both nodes, then keepalived on both (``monitors``: keepalived has one setting)."""
    del monitors
    for node in NODES:
        apache.write_config(apache_of_node(node), pages())
        start_apache(lab, node)
    for node in NODES:
        conf = node_dir(node) / "keepalived.conf"
        conf.write_text(config_text(node))
        argv = [
            *("keepalived", "-n", "-l", "-D", "-G", "-P", "-f", str(conf)),
            *("-p", str(node_dir(node) / "ka.pid"), "-r", str(node_dir(node) / "ka-vrrp.pid")),
        ]
        lab.spawn(node, argv, node_dir(node) / "keepalived.log")


def restore(lab: PeersLab, node: str, timeout: float = 60) -> bool:
    """``node`` healthy again (link up, Apache resumed or restarted) and holding the VIP."""
    inst = apache_of_node(node)
    undo(lab, node, inst)
    if lab.run(node, apache.ready_argv(inst), check=False).returncode != 0:
        start_apache(lab, node)
    return wait_until(lambda: lab.served_from(node), timeout, interval=0.2)


def pidfile_instance(node: str) -> apache.ApacheInstance:
    """The Apache the faults act on."""
    return apache_of_node(node)
