"""serve, worker, dbupdate, shell."""

from __future__ import annotations

import code
import os
import signal
import socket
import subprocess
import sys
import threading

import click

from kiln.cli import main
from kiln.cli.context import Kiln, pass_kiln


@main.command()
@pass_kiln
def dbupdate(kiln: Kiln) -> None:
    """Create or upgrade the database to the current schema."""
    from kiln.db.migrate import upgrade

    upgrade(kiln.settings.db_url)
    click.echo(f"Database is up to date ({kiln.settings.db_url.split('://')[0]}).")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6543, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Web worker processes (default: one per core).")
@click.option("--processes", type=int, default=None, help="Processing worker processes (default: one per core).")
@click.option("--no-worker", is_flag=True, help="Run the web app only (processing workers run elsewhere).")
@click.option("--access-log", is_flag=True, help="Log every request (off by default; nginx usually logs them).")
@pass_kiln
def serve(kiln: Kiln, host: str, port: int, workers: int | None, processes: int | None, no_worker: bool,
          access_log: bool) -> None:
    """Run the web app (several processes behind one port) and the background processing workers.

    SIGHUP restarts every web process and the processing workers gracefully: requests in flight and
    running steps finish first. SIGTERM stops it all the same way.
    """
    from kiln.web.server import KilnServer

    kiln.runtime().close()  # fail here, before forking, if the database or storage settings are wrong
    web_workers = workers or os.cpu_count() or 1
    processing = None if no_worker else ProcessingWorker(kiln, processes)
    url = f"http://{host}:{port}/"
    click.secho(f"Kiln is running at {url} with {web_workers} web process(es) "
                f"(data: {kiln.settings.data_dir}; Ctrl-C stops it)", fg="green")
    server = KilnServer(kiln.settings, bind=f"{host}:{port}", workers=web_workers, access_log=access_log,
                        on_reload=processing.restart if processing else None)
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


class ProcessingWorker:
    """`kiln worker` as a child process of `kiln serve`."""

    def __init__(self, kiln: Kiln, processes: int | None) -> None:
        self.args = [sys.executable, "-m", "kiln", "--data", str(kiln.settings.data_dir), "worker"]
        if processes:
            self.args += ["--processes", str(processes)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.retiring: list[threading.Thread] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        for thread in self.retiring:
            thread.join()

    def restart(self) -> None:
        """A new worker starts at once; the old one finishes its running steps in the background, so
        gunicorn's arbiter (which calls this on SIGHUP) is not held up by a long step."""
        old = self.proc
        self.start()
        if old is not None:
            thread = threading.Thread(target=_stop, args=(old,), daemon=True)
            thread.start()
            self.retiring = [t for t in self.retiring if t.is_alive()] + [thread]


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Warm shutdown: let running steps finish, then kill. The sweeper recovers whatever was cut."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@main.command()
@click.option("--processes", "concurrency", type=int, default=None,
              help="Worker processes (default: processing.concurrency, or one per core).")
@click.option("--queues", "-Q", default=None, help="Comma-separated lanes to consume, e.g. image.new,image.retry.")
@click.option("--kinds", default=None, help="Only these kinds (comma-separated), every reason.")
@click.option("--reasons", default=None, help="Only these reasons (new, retry, reprocess), every kind.")
@click.option("--loglevel", default="INFO", show_default=True)
@pass_kiln
def worker(kiln: Kiln, concurrency: int | None, queues: str | None, kinds: str | None, reasons: str | None,
           loglevel: str) -> None:
    """Run a processing worker (and the sweeper) alone."""
    from kiln.processing.celery_app import lanes, make_celery
    from kiln.processing.dispatch import CeleryDispatcher
    from kiln.processing.sweeper import start_sweeper_process

    app = make_celery(kiln.settings)
    rt = kiln.runtime(CeleryDispatcher(app))
    rt.engine.dispose()  # the sweeper and the pool fork; each child opens its own connections
    lane_list = queues or ",".join(_select_lanes(lanes(), kinds, reasons))
    sweeper = start_sweeper_process(kiln.settings)
    try:
        app.worker_main([
            "worker", f"--loglevel={loglevel}", f"--concurrency={concurrency or kiln.settings.worker_concurrency}",
            "-Q", lane_list, "-n", f"kiln-{os.getpid()}@{socket.gethostname()}", "--without-gossip",
            "--without-mingle", "--pool=prefork",
        ])
    finally:
        sweeper.terminate()
        sweeper.join(10)


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
