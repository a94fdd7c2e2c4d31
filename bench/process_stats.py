"""A process's CPU time and memory from /proc, as the benchmarks that measure them read it."""

import os
from pathlib import Path


def proc_stats(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    mem = {line.split(":")[0]: line.split()[1] for line in status if line.startswith("Vm")}
    return cpu, int(mem["VmRSS"]) / 1024, int(mem["VmHWM"]) / 1024
