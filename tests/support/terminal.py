"""Run the ``jobdeck`` command in a pseudo-terminal, as an operator at a terminal would."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

from tests.conftest import BIN, ROOT, process_environment

#: Escape sequences a terminal interprets (colours, cursor moves), to read the text behind them.
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass(frozen=True)
class TerminalRun:
    exit_code: int
    raw: str

    @property
    def text(self) -> str:
        """What the operator read, without the escape sequences."""
        return ESCAPE.sub("", self.raw)


def run_in_terminal(
    environment: dict[str, str],
    *arguments: str,
    answers: dict[str, str] | None = None,
    timeout: float = 90,
    columns: int = 120,
) -> TerminalRun:
    """Run ``jobdeck ARGUMENTS`` on a pseudo-terminal; type ``answers[prompt]`` when ``prompt`` shows."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = process_environment({"TERM": "xterm-256color", **environment})
    if "NO_COLOR" not in environment:
        env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [str(BIN / "jobdeck"), *arguments],
        cwd=ROOT,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    pending = dict(answers or {})
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closes (EIO) once the command has exited
                    break
                if not chunk:
                    break
                received.extend(chunk)
                for prompt in [prompt for prompt in pending if prompt in received.decode(errors="replace")]:
                    os.write(controller, pending.pop(prompt).encode())
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"jobdeck {' '.join(arguments)} still running after {timeout} s")
    finally:
        os.close(controller)
    return TerminalRun(process.wait(timeout=10), received.decode(errors="replace"))
