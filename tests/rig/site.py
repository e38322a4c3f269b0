"""A Kiln site on several hosts, as docs/deploy.md ("Several machines") sets one up: a services host
(PostgreSQL, Redis, RabbitMQ, Swift with its S3 API), web hosts running `kiln serve --no-worker --multi-host`
behind an nginx host, and worker hosts running `kiln worker --multi-host`. Every host runs Kiln from
this checkout with a data directory of its own, holding the same kiln.toml and secret.key; nothing
is shared through the file system.

The test is the site's visitor and operator: it sits on the bridge at .1, talks to nginx, and reads
the site's PostgreSQL directly to check the ledger.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine

from kiln.web.templating import STATIC_DIR
from tests.rig.network import Host, Network, network

ROOT = Path(__file__).parents[2]
SWIFT_SH = ROOT.parent / "shared" / "services" / "swift.sh"
NGINX_SITE = ROOT / "contrib" / "nginx" / "kiln.conf"
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None
WEB_PORT = 6543
SWIFT_PORT = 8080
# The server itself, not Debian's wrapper (which switches to the rabbitmq user and its home's settings).
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
# A host is taken for gone after three sweeps without a heartbeat: short sweeps make that seconds.
SWEEP_INTERVAL = 1.0


def broker_url(services: str, broker: str) -> str:
    return f"redis://{services}:6379/0" if broker == "redis" else f"amqp://guest:guest@{services}:5672//"


def kiln_toml(services: str, proxy: str, broker: str = "redis") -> str:
    """The kiln.toml every host gets: docs/deploy.md's, with the rig's addresses and broker (``redis``
    or ``rabbitmq``)."""
    return f"""\
base_url = "http://{proxy}"
database_url = "postgresql+psycopg://kiln@{services}:5432/kiln"
broker_url = "{broker_url(services, broker)}"

[security]
trusted_proxies = ["{proxy}"]

[processing]
sweep_interval = {SWEEP_INTERVAL}

[storage]
queue = "swift"
originals = "swift"
public = "swift"

[storage.backends.swift]
type = "swift"
auth_url = "http://{services}:{SWIFT_PORT}/auth/v1.0"
user = "test:tester"
key = "testing"
prefix = "kiln"
"""


def nginx_site(web: list[str], listen: str, static: Path) -> str:
    """contrib/nginx/kiln.conf for several web hosts: an upstream of them, no /media/ location (the
    public store is Swift), and the rig's addresses and paths."""
    site = NGINX_SITE.read_text()
    upstream = "upstream kiln_web {\n" + "".join(
        f"    server {address}:{WEB_PORT} max_fails=1 fail_timeout=5s;\n" for address in web) + "}\n\n"
    media = re.compile(r"\n    # The public store: renditions.*?\n    }\n(?=\n    # Everything else)", re.S)
    for before, after in {
        "/srv/kiln/.venv/lib/python3.11/site-packages/kiln/web/static/": f"{static}/",
        "proxy_pass http://127.0.0.1:6543;": "proxy_pass http://kiln_web;",
        "listen 80;": f"listen {listen}:80;",
        "listen [::]:80;": "",
    }.items():
        assert before in site, f"contrib/nginx/kiln.conf lost {before!r}"
        site = site.replace(before, after)
    site, removed = media.subn("", site)
    assert removed == 1, "contrib/nginx/kiln.conf's /media/ location was not found"
    return upstream + site


def _wait(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None,
          proc_alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if not proc_alive() or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise AssertionError(f"{what} did not come up within {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


@dataclass
class Rig:
    net: Network
    services: Host
    proxy: Host
    web: list[Host]
    workers: list[Host]
    env: dict[str, str]  # what every Kiln process gets besides its kiln.toml
    secret: str
    worker_env: dict[str, str]  # added to a worker's environment (the tests' step delay)
    db: Engine = field(init=False)
    broker: str = "redis"  # the broker every host's kiln.toml names: redis or rabbitmq (both run)

    def __post_init__(self) -> None:
        self.db = create_engine(f"postgresql+psycopg://kiln@{self.services.address}:5432/kiln",
                                connect_args={"connect_timeout": 5})

    @property
    def url(self) -> str:
        return f"http://{self.proxy.address}"

    @property
    def swift(self) -> str:
        return f"http://{self.services.address}:{SWIFT_PORT}"

    def data(self, host: Host, name: str = "data", toml: str | None = None) -> Path:
        """``host``'s own data directory: kiln.toml and secret.key, the same as every host's."""
        folder = host.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kiln.toml").write_text(toml if toml is not None else
                                          kiln_toml(self.services.address, self.proxy.address, self.broker))
        (folder / "secret.key").write_text(self.secret)
        (folder / "secret.key").chmod(0o600)
        return folder

    def kiln(self, host: Host, *args: str, data: Path | None = None, log: str = "kiln.log",
             env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        data = data or self.data(host)
        return host.run([sys.executable, "-m", "kiln", "--data", str(data), *args],
                        log=host.folder / log, env={**self.env, **(env or {})})

    def start_web(self, host: Host) -> None:
        proc = self.kiln(host, "serve", "--no-worker", "--multi-host", "--host", host.address, "--port",
                         str(WEB_PORT), "--workers", "1", "--verbose", log="serve.log")
        _wait(f"kiln serve on {host.name}", lambda: httpx.get(f"http://{host.address}:{WEB_PORT}/",
                                                             timeout=2).status_code == 200,
              120, host.folder / "serve.log", lambda: proc.poll() is None)

    def start_worker(self, host: Host) -> None:
        log = host.folder / "worker.log"
        started = log.read_text(errors="replace").count(" ready.") if log.exists() else 0
        proc = self.kiln(host, "worker", "--multi-host", "--processes", "2", log="worker.log", env=self.worker_env)
        _wait(f"kiln worker on {host.name}", lambda: log.read_text(errors="replace").count(" ready.") > started,
              120, log, lambda: proc.poll() is None)


def _start_rabbitmq(services: Host) -> None:
    """A RabbitMQ node of the services host's own (not the machine's), guest allowed from other hosts.
    Started first and waited for last: Erlang takes a while to boot."""
    folder = services.folder / "rabbitmq"
    folder.mkdir()
    (folder / "rabbitmq.conf").write_text("loopback_users = none\nlisteners.tcp.default = 5672\n")
    (folder / "enabled_plugins").write_text("[].\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8",
           "RABBITMQ_NODENAME": "rig@localhost", "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
           "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"), "RABBITMQ_LOG_BASE": str(folder / "log"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
           "RABBITMQ_PID_FILE": str(folder / "pid"), "RABBITMQ_CONF_ENV_FILE": "/dev/null"}
    services.run([RABBITMQ_SERVER], log=services.folder / "rabbitmq.log", env=env)


def _rabbitmq_up(address: str) -> bool:
    with socket.create_connection((address, 5672), timeout=3) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        return sock.recv(1) == b"\x01"  # Connection.Start: a method frame, the broker is ready


def _start_services(rig_net: Network, services: Host) -> None:
    """PostgreSQL, Redis, RabbitMQ and Swift on the services host, each listening on its address only
    (RabbitMQ on all of the host's)."""
    address = services.address
    _start_rabbitmq(services)
    assert PG_BIN is not None, "the multi-host rig needs PostgreSQL's server binaries in /usr/lib/postgresql"
    pgdata = services.folder / "pg"
    pgdata.mkdir()
    shutil.chown(pgdata, "postgres", "postgres")
    services.check(["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"], timeout=120)
    (pgdata / "pg_hba.conf").write_text(f"local all all trust\nhost all all {rig_net.subnet}.0/24 trust\n")
    # A cut-off host may hold a transaction open: the server ends it instead of keeping its locks.
    services.run([str(PG_BIN / "postgres"), "-D", str(pgdata), "-c", f"listen_addresses={address}",
                  "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
                  "-c", "idle_in_transaction_session_timeout=10s", "-c", "tcp_keepalives_idle=5",
                  "-c", "tcp_keepalives_interval=2", "-c", "tcp_keepalives_count=3"],
                 log=services.folder / "postgres.log", user="postgres")
    services.run(["redis-server", "--bind", address, "--port", "6379", "--save", "", "--appendonly", "no",
                  "--protected-mode", "no", "--dir", str(services.folder), "--tcp-keepalive", "5"],
                 log=services.folder / "redis.log")
    # swift.sh binds its proxy to 127.0.0.1 (of this host): start it, then move the proxy to the host's address.
    swift_dir = services.folder / "swift"
    started = services.run(["bash", str(SWIFT_SH), "start", str(swift_dir), str(SWIFT_PORT)],
                           log=services.folder / "swift.sh.log")
    assert started.wait(180) == 0, (services.folder / "swift.sh.log").read_text()
    with suppress(ProcessLookupError, FileNotFoundError):
        services.check(["kill", (swift_dir / "run" / "proxy.pid").read_text().strip()])
    conf = swift_dir / "conf" / "proxy-server.conf"
    conf.write_text(conf.read_text().replace("bind_ip = 127.0.0.1", f"bind_ip = {address}"))
    time.sleep(0.5)  # the old proxy lets go of its port
    services.run(["swift-proxy-server", str(conf)], log=services.folder / "swift-proxy.log")

    def pg_up() -> bool:
        engine = create_engine(f"postgresql+psycopg://postgres@{address}:5432/postgres",
                               isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("CREATE ROLE kiln LOGIN")
                conn.exec_driver_sql("CREATE DATABASE kiln OWNER kiln")
        finally:
            engine.dispose()
        return True

    _wait("PostgreSQL", pg_up, 60, services.folder / "postgres.log")
    _wait("Redis", lambda: services.check(["redis-cli", "-h", address, "ping"], timeout=5).strip() == "PONG", 30,
          services.folder / "redis.log")
    _wait("Swift", lambda: httpx.get(f"http://{address}:{SWIFT_PORT}/info", timeout=3).status_code == 200, 60,
          services.folder / "swift-proxy.log")
    _wait("RabbitMQ", lambda: _rabbitmq_up(address), 90, services.folder / "rabbitmq.log")


def _start_nginx(proxy: Host, web: list[Host]) -> None:
    folder = proxy.folder
    static = shutil.copytree(STATIC_DIR, folder / "static")
    (folder / "kiln-site.conf").write_text(nginx_site([h.address for h in web], proxy.address, static))
    temps = " ".join(f"{name}_temp_path {folder}/{name};" for name in ("client_body", "proxy", "fastcgi",
                                                                        "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(f"""\
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    {temps}
    include {folder}/kiln-site.conf;
}}
""")
    args = ["/usr/sbin/nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    proxy.check([*args, "-t"])
    proc = proxy.run([*args, "-g", "daemon off;"], log=folder / "nginx.out")
    _wait("nginx", lambda: httpx.get(f"http://{proxy.address}/", timeout=3).status_code == 200, 60,
          folder / "error.log", lambda: proc.poll() is None)


@contextmanager
def rig(workers: int = 2, worker_env: dict[str, str] | None = None) -> Iterator[Rig]:
    """The whole site, up: services, two web hosts behind nginx, ``workers`` worker hosts. Torn down,
    processes, namespaces, bridge and folders, when the block ends."""
    with network() as net:
        services = net.add("services", 2)
        proxy = net.add("proxy", 10)
        web = [net.add(f"web{n}", 10 + n) for n in (1, 2)]
        hosts = [net.add(f"worker{n}", 20 + n) for n in range(1, workers + 1)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(net.folder), "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        site = Rig(net, services, proxy, web, hosts, env, secrets.token_urlsafe(48), worker_env or {})
        try:
            _start_services(net, services)
            # `kiln dbupdate` once, from one machine, before the others start.
            migrate = site.kiln(web[0], "dbupdate", log="dbupdate.log")
            assert migrate.wait(180) == 0, (web[0].folder / "dbupdate.log").read_text()
            for host in web:  # one after the other: both would create Swift's containers at once
                site.start_web(host)
            for host in hosts:
                site.start_worker(host)
            _start_nginx(proxy, web)
            yield site
        finally:
            site.db.dispose()
