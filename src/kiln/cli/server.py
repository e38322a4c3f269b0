"""serve, worker, dbupdate, shell."""

from __future__ import annotations

import code
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from kiln.cli import main
from kiln.cli.context import Kiln, pass_kiln
from kiln.config import Settings


@main.command()
@pass_kiln
def dbupdate(kiln: Kiln) -> None:
    """Create or upgrade the database to the current schema."""
    from kiln.db.migrate import upgrade

    upgrade(kiln.settings.db_url)
    click.echo(f"Database is up to date ({kiln.settings.db_url.split('://')[0]}).")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6543, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Web worker processes (default: one per core).")
@click.option("--processes", type=int, default=None, help="Processing worker processes (default: one per core).")
@click.option("--no-worker", is_flag=True, help="Run the web app only (processing workers run elsewhere).")
@click.option("--access-log", is_flag=True, help="Log every request (off by default; nginx usually logs them).")
@click.option("--verbose", "-v", is_flag=True, help="Print every process's log here instead of DATA/kiln.log.")
@click.option("--multi-host", is_flag=True, help="This site runs on several machines: refuse what only works on "
              "one (the embedded queue, local stores, SQLite).")
@pass_kiln
def serve(kiln: Kiln, host: str, port: int, workers: int | None, processes: int | None, no_worker: bool,
          access_log: bool, verbose: bool, multi_host: bool) -> None:
    """Run the web app (several processes behind one port) and the background processing workers.

    SIGHUP restarts every web process and the processing workers gracefully: requests in flight and
    running steps finish first. SIGTERM stops it all the same way; Ctrl-C stops at once when no step
    is running, and otherwise says what it waits for.
    """
    from kiln.processing import hosts
    from kiln.web.server import KilnServer

    settings = kiln.settings
    rt = kiln.runtime()
    hosts.check_start(rt, multi_host=multi_host)
    rt.close()  # fail here, before forking, if the database or storage settings are wrong
    _check_port_free(host, port)
    web_workers = workers or os.cpu_count() or 1
    log_file = None if verbose else settings.log_file
    processing = None if no_worker else ProcessingWorker(kiln, processes, log_file, multi_host)
    public = _listening_url(host, port)
    settings.serve_url_file.write_text(public + "\n")
    _banner(settings, public, log_file, web_workers, processing is not None)
    server = KilnServer(settings, bind=f"{host}:{port}", workers=web_workers, access_log=access_log,
                        log_file=log_file, on_reload=processing.restart if processing else None)
    try:
        if processing:
            processing.start()
        server.run()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        if processing:
            processing.stop()
        click.echo("Kiln has stopped.")


def _check_port_free(host: str, port: int) -> None:
    """Say plainly when the address is taken (gunicorn would retry for five seconds, then exit with its
    complaint in the log)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"Kiln cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (perhaps "
                f"another Kiln) may be using that port; choose another with --port.") from None


def _listening_url(host: str, port: int) -> str:
    """The address `serve` listens on, as a link: a wildcard address becomes this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _banner(settings: Settings, public: str, log_file: Path | None, web: int, processing: bool) -> None:
    click.secho(f"Kiln is running at {public}/", fg="green", bold=True)
    if settings.base_url:
        click.echo(f"  Links in mail and feeds use base_url, {settings.base_url}")
    else:
        click.echo(f"  Mail links point to {public}. If people reach Kiln at another address, set")
        click.echo(f"  base_url in {settings.data_dir / 'kiln.toml'} (for example base_url = \"https://media.example.org\").")
    if settings.mail.smtp_host:
        click.echo(f"  Mail goes out through {settings.mail.smtp_host}:{settings.mail.smtp_port}.")
    else:
        click.echo(f"  No mail server is set up: mail is printed here and saved in {settings.mail_dir}/")
    parts = f"{web} web process{'es' if web != 1 else ''}" + (", processing worker" if processing else "")
    click.echo(f"  Data: {settings.data_dir} ({parts})")
    if log_file is not None:
        click.echo(f"  Log: {log_file} (--verbose prints it here)")
    click.echo("  Press Ctrl-C to stop.")


class ProcessingWorker:
    """`kiln worker` as a child process of `kiln serve`, in a process group of its own: Ctrl-C in the
    terminal reaches `serve`, which decides how to stop it (at once when idle)."""

    def __init__(self, kiln: Kiln, processes: int | None, log_file: Path | None = None,
                 multi_host: bool = False) -> None:
        self.kiln = kiln
        self.args = [sys.executable, "-m", "kiln", "--data", str(kiln.settings.data_dir), "worker"]
        if processes:
            self.args += ["--processes", str(processes)]
        if multi_host:
            self.args.append("--multi-host")
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.retiring: list[threading.Thread] = []

    def start(self) -> None:
        if self.log_file is None:
            self.proc = subprocess.Popen(self.args, start_new_session=True)
            return
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        """Stop the worker: at once when no step is running on this machine; otherwise let the running
        steps finish (up to GRACE seconds, or until Ctrl-C is pressed again)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            running = _running_steps(self.kiln)
            proc.send_signal(signal.SIGTERM)  # warm shutdown: no new steps, running ones finish
            if running == 0:
                _wait_or_kill(proc, IDLE_GRACE)
            else:
                what = "an unknown number of" if running is None else str(running)
                click.echo(f"Waiting for {what} running processing step(s) to finish, at most {GRACE:.0f} s. "
                           "Press Ctrl-C again to stop now; unfinished steps run again at the next start.")
                _wait_or_kill(proc, GRACE, interruptible=True)
            _forget_worker(self.kiln, proc.pid)
        for thread in self.retiring:
            thread.join()

    def restart(self) -> None:
        """A new worker starts at once; the old one finishes its running steps in the background, so
        gunicorn's arbiter (which calls this on SIGHUP) is not held up by a long step."""
        old = self.proc
        self.start()
        if old is not None:
            thread = threading.Thread(target=_retire, args=(old,), daemon=True)
            thread.start()
            self.retiring = [t for t in self.retiring if t.is_alive()] + [thread]


GRACE = 20.0  # the longest `serve` waits for running steps; the sweeper recovers whatever is cut
IDLE_GRACE = 1.0  # an idle worker is killed after this: Celery takes seconds of polling to notice a warm shutdown


def _forget_worker(kiln: Kiln, pid: int, timeout: float = 2.0) -> None:
    """Take a stopped worker off the admin panel's list (a worker killed before it could say goodbye
    would otherwise show as silent for a day); best effort, bounded."""
    from kiln.processing import hosts

    thread = threading.Thread(target=lambda: hosts.leave(kiln.runtime(), hosts.worker_id(pid)), daemon=True)
    thread.start()
    thread.join(timeout)


def _running_steps(kiln: Kiln, timeout: float = 2.0) -> int | None:
    """How many steps run on this machine now; None when the database does not answer in time."""
    from kiln.processing.ledger import running_on_host
    from kiln.processing.limits import HOST

    found: list[int] = []

    def count() -> None:
        with kiln.runtime().sessions() as session:
            found.append(len(running_on_host(session, HOST)))

    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the worker, its pool and its sweeper
    proc.wait()


def _wait_or_kill(proc: subprocess.Popen[bytes], grace: float, interruptible: bool = False) -> None:
    interrupted = threading.Event()
    previous = None
    if interruptible and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline and not interrupted.is_set():
            time.sleep(0.05)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _kill_group(proc)  # also when it exited: pool children or the sweeper may outlive it by a moment


def _retire(proc: subprocess.Popen[bytes]) -> None:
    """An old worker after a reload: warm shutdown, then killed after GRACE."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _wait_or_kill(proc, GRACE)


@main.command()
@click.option("--processes", "concurrency", type=int, default=None,
              help="Worker processes (default: processing.concurrency, or one per core).")
@click.option("--queues", "-Q", default=None, help="Comma-separated lanes to consume, e.g. image.new,image.retry "
              "(add outbox to send mail too; without -Q a worker does).")
@click.option("--kinds", default=None, help="Only these kinds (comma-separated), every reason.")
@click.option("--reasons", default=None, help="Only these reasons (new, retry, reprocess), every kind.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--multi-host", is_flag=True, help="This site runs on several machines: refuse what only works on "
              "one (the embedded queue, local stores, SQLite).")
@pass_kiln
def worker(kiln: Kiln, concurrency: int | None, queues: str | None, kinds: str | None, reasons: str | None,
           loglevel: str, multi_host: bool) -> None:
    """Run a processing worker (and the sweeper) alone."""
    from kiln.processing import hosts
    from kiln.processing.celery_app import lanes, make_celery
    from kiln.processing.dispatch import CeleryDispatcher
    from kiln.processing.outbox import QUEUE as OUTBOX_QUEUE
    from kiln.processing.sweeper import start_sweeper_process

    app = make_celery(kiln.settings)
    rt = kiln.runtime(CeleryDispatcher(app))
    hosts.check_start(rt, multi_host=multi_host)
    rt.engine.dispose()  # the sweeper and the pool fork; each child opens its own connections
    lane_list = queues or ",".join([*_select_lanes(lanes(), kinds, reasons), OUTBOX_QUEUE])
    processes = concurrency or kiln.settings.worker_concurrency
    sweeper = start_sweeper_process(kiln.settings, beat=(lane_list.split(","), processes))
    try:
        app.worker_main([
            "worker", f"--loglevel={loglevel}", f"--concurrency={processes}",
            "-Q", lane_list, "-n", f"kiln-{os.getpid()}@{socket.gethostname()}", "--without-gossip",
            "--without-mingle", "--pool=prefork",
        ])
    finally:
        sweeper.terminate()
        sweeper.join(10)
        hosts.leave(rt, hosts.worker_id())


def _select_lanes(all_lanes: list[str], kinds: str | None, reasons: str | None) -> list[str]:
    want_kinds = set(kinds.split(",")) if kinds else None
    want_reasons = set(reasons.split(",")) if reasons else None
    chosen = [name for name in all_lanes
              if (want_kinds is None or name.split(".")[0] in want_kinds)
              and (want_reasons is None or name.split(".")[1] in want_reasons)]
    if not chosen:
        raise click.BadParameter(f"no lane matches; lanes are {', '.join(all_lanes)}")
    return chosen


@main.command()
@pass_kiln
def shell(kiln: Kiln) -> None:
    """A Python shell with `rt` (runtime), `session`, `settings` and the models ready."""
    from kiln.accounts.models import User
    from kiln.media.models import MediaEntry, Rendition, Tag
    from kiln.processing.models import ProcessingStep

    rt = kiln.runtime()
    session = rt.sessions()
    names = {"rt": rt, "session": session, "settings": kiln.settings, "User": User, "MediaEntry": MediaEntry,
             "Rendition": Rendition, "Tag": Tag, "ProcessingStep": ProcessingStep}
    banner = "Kiln shell. Ready: " + ", ".join(names)
    try:
        from IPython import start_ipython  # type: ignore[import-not-found]

        start_ipython(argv=[], user_ns=names)
    except ImportError:
        code.interact(banner=banner, local=names)
