"""Hosts made of Linux namespaces: each has a network namespace joined to a private bridge by a veth
pair, its own host name (UTS namespace) and its own processes (PID namespace, with /proc of its own).

Needs root and `ip netns`. Names are unique to the run (``kr`` + 4 hex digits); the /24 is one of
10.231.0.0/16 that no interface or route of this machine uses. The root namespace holds the bridge
and the address .1 (the test is the client on that network); nothing is routed anywhere else
(no default route in any namespace, so traffic stays on the bridge).

A host's processes all descend from one small init (PID 1 of its PID namespace, reaping orphans):
killing that init kills every process of the host at once, however it forked or daemonised.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"
NETNS_ETC = Path("/etc/netns")  # a namespace's own /etc files (hosts), as `ip netns exec` reads them
# PID 1 of a host: reaps whatever is re-parented to it (a zombie would still answer kill(pid, 0),
# and Kiln takes an answering pid for a live worker).
INIT = ("import os, time\n"
        "while True:\n"
        "    try:\n"
        "        os.wait()\n"
        "    except ChildProcessError:\n"
        "        time.sleep(0.2)\n")


class RigUnavailable(RuntimeError):
    """The machine cannot make namespaces (not root, or no `ip netns`)."""


def sh(*args: str, timeout: float = 30, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    """One machine of the rig. ``run`` starts a command on it; ``cut`` and ``reconnect`` pull and put
    back its network cable; ``kill`` stops every process on it at once (a power cut)."""

    name: str  # also its host name, e.g. "worker1"
    netns: str
    veth: str  # its end of the cable, inside its namespace
    cable: str  # the other end, on the bridge
    address: str
    folder: Path  # its own disk (data directory, logs)
    init: subprocess.Popen[bytes] | None = None
    init_pid: int = 0  # PID 1 of the host, as the root namespace sees it
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def boot(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.init = subprocess.Popen(
            [IP, "netns", "exec", self.netns, "unshare", "--uts", "--pid", "--fork", "--mount-proc",
             "python3", "-c", INIT], stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.init_pid:
            children = sh("pgrep", "-P", str(self.init.pid), check=False).split()
            if children:
                self.init_pid = int(children[0])
            elif self.init.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"host {self.name} did not boot")
            else:
                time.sleep(0.05)
        self.run(["hostname", self.name]).wait(10)

    def run(self, args: list[str], log: Path | None = None, env: dict[str, str] | None = None,
            user: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``args`` on this host (its network, host name and processes), output to ``log``."""
        enter = ["nsenter", "-t", str(self.init_pid), "--net", "--uts", "--pid", "--mount", "--"]
        if user:
            enter += ["runuser", "-u", user, "--"]
        out = log.open("ab") if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen([*enter, *args], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def check(self, args: list[str], timeout: float = 60) -> str:
        """Run ``args`` on this host and return its output; fail when it fails."""
        enter = ["nsenter", "-t", str(self.init_pid), "--net", "--uts", "--pid", "--mount", "--"]
        return sh(*enter, *args, timeout=timeout)

    def cut(self) -> None:
        sh(IP, "-n", self.netns, "link", "set", self.veth, "down")

    def reconnect(self) -> None:
        sh(IP, "-n", self.netns, "link", "set", self.veth, "up")

    def kill(self) -> None:
        """SIGKILL every process of this host: PID 1 of a PID namespace takes the others with it."""
        if self.init_pid:
            with suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self.init is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.init.pid, signal.SIGKILL)
            self.init.wait(30)
        for proc in self.procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        self.init, self.init_pid, self.procs = None, 0, []


@dataclass
class Network:
    prefix: str  # e.g. "kr3fa2"
    subnet: str  # e.g. "10.231.77"
    bridge: str
    folder: Path
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def client_address(self) -> str:
        return f"{self.subnet}.1"

    def add(self, name: str, number: int, etc_hosts: str | None = None) -> Host:
        """A new host called ``name`` at .``number``, cabled to the bridge and booted. ``etc_hosts``: the
        /etc/hosts its processes read (``ip netns exec`` mounts /etc/netns/NAME/hosts over it), so that
        hosts find each other by name without touching this machine's own /etc/hosts."""
        short = name[:3] + name[-1]  # "worker1" -> "wor1": interface names are at most 15 characters
        netns, outside, inside = f"{self.prefix}-{name}", f"{self.prefix}{short}", f"{self.prefix}{short}x"
        sh(IP, "netns", "add", netns)
        if etc_hosts is not None:
            etc = NETNS_ETC / netns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(etc_hosts)
        host = Host(name, netns, "eth0", outside, f"{self.subnet}.{number}", self.folder / name)
        self.hosts[name] = host
        sh(IP, "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh(IP, "link", "set", inside, "netns", netns)
        sh(IP, "link", "set", outside, "master", self.bridge, "up")
        sh(IP, "-n", netns, "link", "set", inside, "name", "eth0")
        sh(IP, "-n", netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        sh(IP, "-n", netns, "link", "set", "eth0", "up")
        sh(IP, "-n", netns, "link", "set", "lo", "up")
        host.boot()
        return host

    def teardown(self) -> None:
        for host in self.hosts.values():
            with suppress(Exception):
                host.kill()
        for host in self.hosts.values():
            # Deleting one end deletes the pair at once (a deleted namespace lets go of its end only
            # when the kernel gets round to freeing it).
            sh(IP, "link", "delete", host.cable, check=False)
            sh(IP, "netns", "delete", host.netns, check=False)
            shutil.rmtree(NETNS_ETC / host.netns, ignore_errors=True)
        sh(IP, "link", "delete", self.bridge, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_subnet() -> str:
    used = sh(IP, "-4", "-o", "addr") + sh(IP, "-4", "route")
    for _ in range(100):
        subnet = f"10.231.{random.randrange(1, 255)}"
        if f"{subnet}." not in used:
            return subnet
    raise RigUnavailable("no free 10.231.N.0/24 on this machine")


def require_namespaces() -> None:
    """Fail (never skip) when this machine cannot build the rig, saying why."""
    if os.geteuid() != 0:
        raise RigUnavailable("the multi-host rig needs root (network and PID namespaces)")
    for tool in ("nsenter", "unshare", "runuser"):
        if shutil.which(tool) is None:
            raise RigUnavailable(f"the multi-host rig needs {tool} (util-linux)")
    try:
        sh(IP, "netns", "list")
    except (OSError, RuntimeError) as exc:
        raise RigUnavailable(f"the multi-host rig needs `ip netns` (iproute2): {exc}") from exc


@contextmanager
def network() -> Iterator[Network]:
    """A private bridge with the test's own address on it; hosts are added with ``add``. Everything
    (processes, namespaces, interfaces, folders) is removed when the block ends, however it ends."""
    require_namespaces()
    prefix = f"kr{random.getrandbits(16):04x}"
    folder = Path(tempfile.mkdtemp(prefix=f"kiln-rig-{prefix}-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user on the services host
    net = Network(prefix, _free_subnet(), f"{prefix}br", folder)
    try:
        sh(IP, "link", "add", net.bridge, "type", "bridge")
        sh(IP, "addr", "add", f"{net.client_address}/24", "dev", net.bridge)
        sh(IP, "link", "set", net.bridge, "up")
        yield net
    finally:
        net.teardown()
