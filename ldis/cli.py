"""The `ldis` command. Each subcommand is a thin adapter: settings -> container -> use case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ldis.domain.errors import DomainError, ValidationFailed
from ldis.domain.roles import parse_roles
from ldis.settings import PROJECT_ROOT, LogFormat, Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])
GUNICORN_CONF = PROJECT_ROOT / "config" / "gunicorn.conf.py"


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"ldis: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        _fail(str(exc))


def _domain_errors(func: F) -> F:
    """Print a use case's refusal as one clear line instead of a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailed as exc:
            _fail("; ".join(f"{field}: {problem}" for field, problem in exc.fields.items()), 1)
        except DomainError as exc:
            _fail(exc.message, 1)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


@click.group()
def main() -> None:
    """ldis: Local Drug Information System alerting service."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (safe to run again: does nothing when up to date)."""
    from ldis.store.db import Database
    from ldis.store.migrate import current_revision, upgrade

    settings = _settings()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    database = Database(settings.effective_database_url)
    try:
        upgrade(database.engine)
        click.echo(f"database at revision {current_revision(database.engine)}")
    finally:
        database.dispose()


@main.group()
def users() -> None:
    """People who use ldis."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="reporter, panel, admin or service_manager; repeatable",
)
@click.option("--password-stdin", is_flag=True, help="read a password from standard input")
@click.option(
    "--partnership",
    "partnership_code",
    default="default",
    show_default=True,
    help="the partnership whose data they see (`ldis partnerships list`)",
)
@click.option(
    "--host-operator",
    is_flag=True,
    help="of no partnership: sees every partnership's data (a host's own staff)",
)
@_domain_errors
def users_create(
    email: str,
    name: str,
    roles: tuple[str, ...],
    password_stdin: bool,
    partnership_code: str,
    host_operator: bool,
) -> None:
    """Add a user."""
    from ldis.bootstrap import build
    from ldis.services import partnerships
    from ldis.services.accounts import create_user

    try:
        parsed = parse_roles([r for value in roles for r in value.split(",")])
    except ValueError as exc:
        _fail(f"--role: {exc}")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    container = build(_settings())
    partnership_id = (
        None if host_operator else partnerships.resolve_code(container.db, partnership_code)
    )
    user_id = create_user(
        container.db,
        email=email,
        name=name,
        roles=parsed,
        password=password,
        partnership_id=partnership_id,
        host_operator=host_operator,
    )
    scope = "host operator" if host_operator else f"partnership {partnership_code.lower()}"
    click.echo(
        f"created user {user_id} <{email.strip().lower()}> with roles "
        f"{', '.join(sorted(parsed))} ({scope})"
    )


@main.group("partnerships")
def partnerships_group() -> None:
    """Partnerships served by this deployment (several need PostgreSQL)."""


@partnerships_group.command("create")
@click.argument("code")
@click.argument("name")
@_domain_errors
def partnerships_create(code: str, name: str) -> None:
    """Add a partnership: CODE (e.g. york-north-yorks) and NAME."""
    from ldis.bootstrap import build
    from ldis.services import partnerships

    created = partnerships.create(build(_settings()).db, code, name)
    click.echo(f"created partnership {created['id']} {created['code']}: {created['name']}")


@partnerships_group.command("list")
def partnerships_list() -> None:
    """The partnerships, one a line: id, code, name."""
    from ldis.bootstrap import build
    from ldis.services import partnerships

    for row in partnerships.list_all(build(_settings()).db):
        click.echo(f"{row['id']}\t{row['code']}\t{row['name']}")


@users.command("totp")
@click.option("--email", required=True)
@click.option("--clear", is_flag=True, help="turn two-factor off (the user sets it up again)")
@_domain_errors
def users_totp(email: str, clear: bool) -> None:
    """Reset a user's two-factor sign-in: print a new TOTP secret, once, alone on the last
    line (type it into an authenticator app). --clear turns it off instead, so a panel
    member or admin sets it up again at the next login (e.g. after losing a phone)."""
    from ldis.bootstrap import build
    from ldis.domain.two_factor import provisioning_uri
    from ldis.services import two_factor

    settings = _settings()
    container = build(settings)
    if clear:
        two_factor.clear(container.db, email)
        click.echo(f"two-factor sign-in is off for {email.strip().lower()}")
        return
    secret = two_factor.provision(container.db, email, key=settings.secret())
    click.echo(
        "New two-factor secret (shown once; old codes and recovery codes no longer", err=True
    )
    click.echo(f"work): {provisioning_uri(secret, email.strip().lower())}", err=True)
    click.echo(secret)


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--email", required=True)
@click.option("--label", default="cli", show_default=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="a role the token may use (repeatable; default: all the user's roles)",
)
@_domain_errors
def tokens_create(email: str, label: str, scopes: tuple[str, ...]) -> None:
    """Print a new API token for the user, once, alone on the last line."""
    from ldis.bootstrap import build
    from ldis.services.accounts import create_token

    try:
        parsed = parse_roles([r for value in scopes for r in value.split(",")])
    except ValueError as exc:
        _fail(f"--scope: {exc}")
    token = create_token(build(_settings()).db, email=email, label=label, scopes=parsed)
    click.echo("New API token (shown once; store it now):", err=True)
    click.echo(token)


@main.command()
@_domain_errors
def demo() -> None:
    """Load demo areas, services, contacts and users (idempotent)."""
    from ldis.bootstrap import build
    from ldis.services.demo import load_demo

    for line in load_demo(build(_settings()).db):
        click.echo(line)


@main.command("import-callouts")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="ambulance service", show_default=True, help="who sent the file")
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="OUR=THEIRS",
    help="our field = the file's column; repeatable",
)
@_domain_errors
def import_callouts(csv_file: Path, source: str, maps: tuple[str, ...]) -> None:
    """Import ambulance call-outs from CSV; a second import of the same file adds nothing.

    Our fields: occurred_at, lat, lon, area, naloxone_given, reference.
    """
    from ldis.bootstrap import build
    from ldis.domain.principal import SYSTEM_REPORTER
    from ldis.services.csv_import import import_callouts as run_import
    from ldis.services.csv_import import parse_mapping

    try:
        mapping = parse_mapping(maps)
    except ValueError as exc:
        _fail(str(exc))
    container = build(_settings())
    started = time.monotonic()
    with csv_file.open(newline="", encoding="utf-8-sig") as stream:
        result = run_import(
            container.db,
            SYSTEM_REPORTER,
            stream,
            source=source,
            mapping=mapping,
            queue=container.queue,
        )
    for row in result.rejected[:50]:
        problems = "; ".join(f"{field}: {problem}" for field, problem in row["fields"].items())
        click.echo(f"line {row['line']}: {problems}", err=True)
    if len(result.rejected) > 50:
        click.echo(f"... and {len(result.rejected) - 50} more rejected rows", err=True)
    click.echo(
        f"accepted {result.accepted}, duplicate {result.duplicates}, "
        f"rejected {len(result.rejected)} ({time.monotonic() - started:.1f} s)"
    )


@main.group()
def recipients() -> None:
    """Services and contacts in bulk (CSV)."""


@recipients.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--apply", "apply_changes", is_flag=True, help="write the changes (default: dry run)")
@_domain_errors
def recipients_import(csv_file: Path, apply_changes: bool) -> None:
    """Check a services-and-contacts CSV and print what it would change; --apply writes it.

    Exit code 1 when any row is bad (nothing is written). See docs/recipients-csv.md.
    """
    from ldis.bootstrap import build
    from ldis.services import recipients_bulk as bulk

    container = build(_settings())
    data = csv_file.read_bytes()
    if apply_changes:
        view = bulk.apply_import(
            container.db, bulk.COMMAND_LINE_ADMIN, data, sending=container.sending()
        )
    else:
        view = bulk.plan_import(container.db, bulk.COMMAND_LINE_ADMIN, data)
    for line in bulk.plan_lines(view):
        click.echo(line)
    if view["errors"]:
        _fail(f"{view['summary']['bad_rows']} bad rows; nothing was written", 1)
    counts = [
        view["summary"][kind][action]
        for kind in ("services", "contacts")
        for action in ("create", "update")
    ]
    if not view["applied"]:
        click.echo("dry run: nothing written (add --apply to write)")
    else:
        click.echo("applied" if any(counts) else "nothing to change: already as the file says")


@recipients.command("export")
@click.argument("csv_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_domain_errors
def recipients_export(csv_file: Path | None) -> None:
    """Write every service and contact as CSV to FILE (or standard output)."""
    from ldis.bootstrap import build
    from ldis.services import recipients_bulk as bulk

    data = bulk.export_csv(build(_settings()).db, bulk.COMMAND_LINE_ADMIN)
    if csv_file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        csv_file.write_bytes(data)
        click.echo(f"wrote {csv_file}", err=True)


@main.group()
def areas() -> None:
    """Areas and their boundaries."""


@areas.command("load-boundaries")
@click.argument("geojson_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--code-property", required=True, help="the feature property holding the area code")
@click.option("--name-property", help="the feature property holding the name (new areas)")
@click.option("--parent", help="the code of the area new areas sit under")
@click.option("--create", is_flag=True, help="add areas the file has and ldis does not")
@_domain_errors
def areas_load_boundaries(
    geojson_file: Path,
    code_property: str,
    name_property: str | None,
    parent: str | None,
    create: bool,
) -> None:
    """Give areas their boundaries from a GeoJSON FeatureCollection, all or nothing.

    Exit code 1, with each refused feature and why, when any feature is refused.
    """
    import json

    from ldis.bootstrap import build
    from ldis.services import boundary_files

    try:
        collection = json.loads(geojson_file.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"{geojson_file} is not valid JSON: {exc}", 1)
    result = boundary_files.load_boundaries(
        build(_settings()).db,
        boundary_files.COMMAND_LINE_ADMIN,
        collection,
        code_property=code_property,
        name_property=name_property,
        parent=parent,
        create=create,
    )
    for refusal in result.refused[:100]:
        label = f" ({refusal.code})" if refusal.code else ""
        click.echo(f"feature {refusal.index}{label}: {refusal.reason}", err=True)
    if len(result.refused) > 100:
        click.echo(f"... and {len(result.refused) - 100} more refused features", err=True)
    click.echo(
        f"loaded {result.loaded}, created {result.created}, refused {len(result.refused)} "
        f"of {result.features} features"
    )
    if not result.stored:
        _fail("nothing was stored: fix the refused features and load the file again", 1)


@main.group()
def retention() -> None:
    """Retention of personal data (docs/privacy.md)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="count what would be removed; change nothing")
def retention_run(dry_run: bool) -> None:
    """Redact reports older than LDIS_RETENTION_MONTHS now (the scheduler does it daily)."""
    from datetime import UTC, datetime

    from ldis.bootstrap import build
    from ldis.services.retention import redact_old_reports

    settings = _settings()
    if settings.retention_months == 0:
        click.echo("LDIS_RETENTION_MONTHS is 0: every report is kept; nothing to do")
        return
    result = redact_old_reports(
        build(settings).db, datetime.now(UTC), settings.retention_months, dry_run=dry_run
    )
    cutoff = result.cutoff.date().isoformat() if result.cutoff else "-"
    verb = "would redact" if dry_run else "redacted"
    click.echo(
        f"{verb} {result.reports} reports received before {cutoff}: "
        f"{result.updates} updates, {result.photos} photos, {result.locations} locations"
    )


@main.group()
def signals() -> None:
    """Signals for the panel."""


@signals.command("recompute")
def signals_recompute() -> None:
    """Run every detector (rules and clusters) over all stored data; safe to repeat."""
    from ldis.bootstrap import build
    from ldis.services.recompute import recompute_all

    started = time.monotonic()
    rules, found = recompute_all(build(_settings()).db)
    click.echo(
        f"rules: {rules} new signal links; clusters: {found} found "
        f"({time.monotonic() - started:.1f} s)"
    )


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _web_command(host: str, port: int, workers: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "--bind", _host_port(host, port)]
    if GUNICORN_CONF.exists():
        command += ["--config", str(GUNICORN_CONF)]
    if workers:
        command += ["--workers", str(workers)]
    return [*command, "ldis.web.app:create_app()"]


def _quiet(settings: Settings) -> list[str]:
    """No start-up banner (plain text on stdout) when every log line must be JSON."""
    return ["--quiet"] if settings.log_format is LogFormat.json else []


def _worker_command(
    concurrency: int,
    settings: Settings,
    *,
    queues: tuple[str, ...] | None = None,
    name: str = "ldis",
) -> list[str]:
    """A Celery worker on `queues` (default: all, urgent first; see docs/delivery.md)."""
    from workers.celery_factory import QUEUES

    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        *_quiet(settings),
        "worker",
        "--queues",
        ",".join(queues or QUEUES),  # in this order: urgent is always asked for first
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        # No broadcast chatter between workers: nothing here uses it, and start-up is faster.
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        settings.log_level,
    ]


def _beat_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        *_quiet(settings),
        "beat",
        "--schedule",
        str(settings.instance_path / "celerybeat-schedule"),
        "--loglevel",
        settings.log_level,
    ]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def web(host: str, port: int) -> None:
    """Serve the web app and API under gunicorn."""
    _settings()
    os.execv(sys.executable, _web_command(host, port))


@main.command()
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--urgent-concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(0, 64),
    help="processes that read only the urgent queue (0: one worker reads both)",
)
def worker(concurrency: int, urgent_concurrency: int) -> None:
    """Run Celery workers: one on the urgent and standard queues (urgent asked for first)
    and, beside it, one on the urgent queue alone, so an urgent alert never waits for a
    large standard one to finish. A worker that exits on its own is started again; Ctrl-C or
    SIGTERM stops both."""
    from workers.celery_factory import URGENT_QUEUE

    settings = _settings()
    main_worker = _worker_command(concurrency, settings)
    if urgent_concurrency == 0:
        os.execv(sys.executable, main_worker)
    urgent_worker = _worker_command(
        urgent_concurrency, settings, queues=(URGENT_QUEUE,), name="ldis-urgent"
    )
    sys.exit(_run_workers({"urgent worker": urgent_worker, "worker": main_worker}))


def _die_with_parent() -> None:
    """In the child, before exec: be told (SIGTERM) if `ldis worker` itself is killed."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A worker that has run this long since its last start is healthy again: delays start over.
HEALTHY_AFTER_SECONDS = 60.0


def _run_workers(commands: dict[str, list[str]]) -> int:
    """Start the workers and keep them running: one that exits on its own (Celery can give
    up on a broker connection lost mid-acknowledgement, e.g. when Redis restarts) is started
    again after a short, growing delay, so the queues are never left without a consumer.
    On SIGTERM or Ctrl-C, stop them all (warm shutdown: tasks under way finish)."""
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(commands[name], preexec_fn=_die_with_parent)

    running = {name: start(name) for name in commands}
    started = dict.fromkeys(commands, time.monotonic())
    failures = dict.fromkeys(commands, 0)
    due: dict[str, float] = {}
    while not stopping:
        now = time.monotonic()
        for name, process in running.items():
            if name in due or process.poll() is None:
                continue
            if now - started[name] >= HEALTHY_AFTER_SECONDS:
                failures[name] = 0
            delay = RESTART_DELAYS[min(failures[name], len(RESTART_DELAYS) - 1)]
            failures[name] += 1
            click.echo(
                f"ldis: {name} exited with code {process.returncode}; starting it again in "
                f"{delay:g} s",
                err=True,
            )
            due[name] = now + delay
        for name, when in list(due.items()):
            if now >= when:
                del due[name]
                running[name], started[name] = start(name), time.monotonic()
        time.sleep(0.2)
    for process in running.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in running.values():
        process.wait()
    return 0


@main.command()
def beat() -> None:
    """Run the scheduler (sweeper and housekeeping)."""
    settings = _settings()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, _beat_command(settings))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
def run(host: str, port: int, concurrency: int) -> None:
    """All in one: migrate, then web + worker + scheduler. Ctrl-C stops all of it."""
    settings = _settings()
    click.get_current_context().invoke(db_upgrade)
    processes = {
        "web": _web_command(host, port, workers=2),
        "worker": _worker_command(concurrency, settings),
        "beat": _beat_command(settings),
    }
    _supervise(processes, f"http://{_host_port(host, port)}")


def _supervise(commands: dict[str, list[str]], url: str) -> None:
    """Start every process; stop all when one dies or on Ctrl-C / SIGTERM."""
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Each child in its own process group: Ctrl-C reaches only us, and we stop them in order.
    running = {
        name: subprocess.Popen(command, start_new_session=True)
        for name, command in commands.items()
    }
    click.echo(f"ldis is running at {url}  (outbox: {url}/outbox; Ctrl-C stops it)")
    exit_code = 0
    while not stopping:
        for name, process in running.items():
            if process.poll() is not None:
                click.echo(
                    f"ldis: {name} exited with code {process.returncode}; stopping", err=True
                )
                stopping, exit_code = True, 1
                break
        time.sleep(0.2)
    click.echo("stopping web, worker and scheduler ...", err=True)
    for process in running.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for name, process in running.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"ldis: {name} did not stop in time; killing it", err=True)
            process.kill()
            process.wait()
    click.echo("stopped.", err=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
