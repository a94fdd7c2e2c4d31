import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from kubetune.local.launch import TrialLaunch
from kubetune.local.process import TrialProcess

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
HONOURS_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


async def stop(code: str, tmp_path: Path, grace: float) -> tuple[int, float, str]:
    launch = TrialLaunch([sys.executable, "-c", code], dict(os.environ))
    process = await TrialProcess.start(launch, tmp_path)
    while "ready" not in process.log_path.read_text():
        await asyncio.sleep(0.05)
    started = time.monotonic()
    process.terminate(grace)
    waiter = asyncio.create_task(process.wait())
    while not waiter.done():
        process.kill_if_overdue()
        await asyncio.sleep(0.05)
    return waiter.result(), time.monotonic() - started, process.log_tail()


def test_sigterm_first_then_sigkill_after_the_grace(tmp_path: Path) -> None:
    code, took, _ = asyncio.run(stop(IGNORES_SIGTERM, tmp_path, grace=0.5))
    assert code == -signal.SIGKILL
    assert 0.5 <= took < 20


def test_a_trial_that_honours_sigterm_exits_in_the_grace(tmp_path: Path) -> None:
    code, took, tail = asyncio.run(stop(HONOURS_SIGTERM, tmp_path, grace=30))
    assert code == 143 and took < 20
    assert tail == "ready"
