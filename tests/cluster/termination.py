"""How a finished container is reported: exit code, reason, signal, termination message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MESSAGE_LIMIT = 4096  # bytes of a termination message, like the real kubelet
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048


def termination_message(message_file: Path, log_file: Path, exit_code: int, policy: str) -> str:
    """The message file's first 4096 bytes; with FallbackToLogsOnError and a failure, the
    log's tail when the file is empty."""
    text = ""
    if message_file.exists():
        text = message_file.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
    if not text and exit_code != 0 and policy == "FallbackToLogsOnError" and log_file.exists():
        lines = log_file.read_bytes().decode(errors="replace").splitlines()[-FALLBACK_LINES:]
        text = "\n".join(lines)[-FALLBACK_BYTES:]
    return text


def terminated_state(
    returncode: int,
    *,
    oom_killed: bool,
    started: str,
    finished: str,
    container_id: str,
    message: str,
) -> dict[str, Any]:
    """`state.terminated` from a process return code (negative: killed by that signal)."""
    exit_code = 128 - returncode if returncode < 0 else returncode  # signal N: 128 + N
    reason = "Completed" if exit_code == 0 else "Error"
    if oom_killed:
        reason = "OOMKilled"
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started,
        "finishedAt": finished,
        "containerID": container_id,
    }
    if returncode < 0:
        state["signal"] = -returncode
    if message:
        state["message"] = message
    return state


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode
