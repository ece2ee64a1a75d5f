"""A redis-server of a test's own, as a hosted Redis is reached: over TLS, or on a Unix socket.

``RedisServer.tls(directory)`` listens only on a TLS port, with a certificate signed by a CA made
for the test (``openssl``); ``RedisServer.unix_socket(directory)`` listens only on a socket file;
``RedisServer.cluster(directory)`` is a one-node cluster. Each refuses the ``default`` user and
admits one ACL user, ``USER`` with ``PASSWORD``. The server is this process's child, not a
daemon: ``stop()`` and ``start()`` restart it on the same address (empty: it keeps nothing on
disk), as a hosted Redis restarts under its clients.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from jobs.platform.redis_server import answers, free_port, redis_server_binary

USER = "jobdeck"
PASSWORD = "secret"
HOST = "127.0.0.1"
DEFAULT_STARTUP_TIMEOUT = 10.0
DEFAULT_STOP_TIMEOUT = 10.0
#: A Unix socket's path must fit sockaddr_un's sun_path (108 bytes on Linux, with its NUL).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Certificates:
    """A CA's certificate and a server certificate (for 127.0.0.1) it signed, with its key."""

    ca: Path
    certificate: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """Generate a CA and a server certificate for 127.0.0.1 under ``directory``."""
    if shutil.which("openssl") is None:
        raise AssertionError("openssl is needed to generate the test's TLS certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    certificates = Certificates(ca=ca, certificate=directory / "server.pem", key=directory / "server.key")
    request, extensions = directory / "server.csr", directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=jobdeck test CA"]
        + ["-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", certificates.key, "-out", request],
        ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2"]
        + ["-extfile", extensions, "-out", certificates.certificate],
    ):
        done = subprocess.run(["openssl", *map(str, command)], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"openssl {command[0]} failed:\n{done.stderr}")
    return certificates


class RedisServer:
    """A redis-server child process listening where ``listen`` (config lines) says, at ``url``."""

    def __init__(
        self, directory: Path, *, listen: list[str], url: str, certificates: Certificates | None = None
    ) -> None:
        self.directory = directory
        self.base_url = url
        self.certificates = certificates
        self.log_path = directory / "redis.log"
        #: What redis-server prints before it opens its log (a configuration it refuses).
        self.output_path = directory / "redis.out"
        self.config_path = directory / "redis.conf"
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            *listen,
            f"dir {directory}",
            f"logfile {self.log_path}",
            'save ""',
            "appendonly no",
            "user default off",
            f"user {USER} on >{PASSWORD} ~* &* +@all",
        ]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def tls(cls, directory: Path) -> RedisServer:
        """A server on a free TLS port only (no plain port), with its certificates in ``directory``."""
        certificates = make_certificates(directory / "tls")
        port = free_port()
        return cls(
            directory,
            listen=[
                f"bind {HOST}",
                "port 0",
                f"tls-port {port}",
                f"tls-cert-file {certificates.certificate}",
                f"tls-key-file {certificates.key}",
                f"tls-ca-cert-file {certificates.ca}",
                "tls-auth-clients no",
            ],
            url=f"rediss://{USER}:{PASSWORD}@{HOST}:{port}/0",
            certificates=certificates,
        )

    @classmethod
    def unix_socket(cls, directory: Path) -> RedisServer:
        """A server on a socket file in ``directory`` only (no TCP port)."""
        socket = directory / "redis.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            raise AssertionError(f"{socket} is too long a path for a Unix socket")
        return cls(
            directory,
            listen=["port 0", f"unixsocket {socket}", "unixsocketperm 700"],
            url=f"unix://{USER}:{PASSWORD}@{socket}?db=0",
        )

    @classmethod
    def cluster(cls, directory: Path) -> RedisServer:
        """A one-node cluster on a free plain port (its slots are for the test to assign)."""
        port = free_port()
        return cls(
            directory,
            listen=[
                f"bind {HOST}",
                f"port {port}",
                "cluster-enabled yes",
                # Its own: port + 10,000, the default, is out of range for a high free port.
                f"cluster-port {free_port()}",
                f"cluster-config-file {directory / 'nodes.conf'}",
            ],
            url=f"redis://{USER}:{PASSWORD}@{HOST}:{port}/0",
        )

    def url(self, **query: str) -> str:
        """The server's URL, with ``query`` (e.g. ``ssl_cert_reqs="none"``) as its query string."""
        if not query:
            return self.base_url
        return self.base_url + ("&" if "?" in self.base_url else "?") + urlencode(query)

    def check_url(self) -> str:
        """A URL this test process can check the server with (for TLS, verifying with the CA)."""
        if self.certificates is not None:
            return self.url(ssl_ca_certs=str(self.certificates.ca))
        return self.base_url

    def start(self) -> RedisServer:
        """Start the server; return once it answers, or fail with its log (e.g. no TLS support)."""
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                [redis_server_binary(), str(self.config_path)], stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + DEFAULT_STARTUP_TIMEOUT
        while not answers(self.check_url()):
            if self.process.poll() is not None:
                hint = " (was it built without TLS support?)" if self.certificates else ""
                raise AssertionError(
                    f"redis-server exited with {self.process.returncode}{hint}:\n{self._log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"redis-server did not answer within {DEFAULT_STARTUP_TIMEOUT} s:\n{self._log()}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit; what it held is lost."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(DEFAULT_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop the server and start it again on the same address, empty."""
        self.stop()
        self.start()

    def _log(self) -> str:
        return "".join(
            path.read_text(errors="replace") for path in (self.output_path, self.log_path) if path.exists()
        )
