"""A real PostgreSQL 15 server for the gradebook tests, started and removed by the tests.

``postgres`` (session fixture) runs ``initdb`` and ``pg_ctl`` from Debian's postgresql-15 binaries
(``make postgres`` installs them) in a fresh temporary data folder, listening on 127.0.0.1 only, on
a free port, with a password-protected superuser; ``PgServer.new_database()`` gives each test its
own database. PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
user (``runuser``). Import the fixture into a test module with ``from pg import postgres``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PgServer:
    """One running server: ``url(db)`` is an SQLAlchemy URL for database ``db`` on it."""

    port: int
    home: Path
    user: str
    password: str
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
                f"{database}")

    def new_database(self) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        name = f"gradebook_{len(self.databases)}_{secrets.token_hex(3)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             password=self.password, dbname="postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> PgServer:
    """initdb + pg_ctl start in a new temporary folder; raises if the binaries are missing."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL 15 in {PG_BIN}: run `make postgres` "
                           "(apt-get install postgresql-15)")
    home = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))  # /tmp: reachable by the postgres user
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    server = PgServer(port=0, home=home, user="cnnlab_test", password=secrets.token_hex(12))
    pwfile = home / "pw"
    pwfile.write_text(server.password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    run = dict(check=True, capture_output=True, text=True)
    subprocess.run(_as_server_user([str(PG_BIN / "initdb"), "-D", str(home / "data"),
                                    "-U", server.user, f"--pwfile={pwfile}",
                                    "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"]), **run)
    for _ in range(3):  # a free port may be taken between the check and the bind
        server.port = _free_port()
        opts = (f"-p {server.port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=60")
        done = subprocess.run(_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(home / "data"),
                                               "-l", str(home / "log"), "-o", opts, "-w", "-t",
                                               "60", "start"]), capture_output=True, text=True)
        if done.returncode == 0:
            return server
    log = (home / "log").read_text() if (home / "log").exists() else ""
    shutil.rmtree(home, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{log}")


def stop_postgres(server: PgServer) -> None:
    subprocess.run(_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(server.home / "data"),
                                    "-m", "immediate", "-w", "stop"]), capture_output=True)
    shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL 15 server, stopped and deleted after the session."""
    try:
        server = start_postgres()
    except RuntimeError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))
    try:
        yield server
    finally:
        stop_postgres(server)
