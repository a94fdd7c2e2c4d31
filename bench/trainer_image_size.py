"""Installed size of the trainer image's Python dependencies: before and after the split.

"before": what `pip install ./[trainer]` installed when kubetune's base dependencies held
everything (today's base + [operator] + [trainer]); "after": base + [trainer] only.
torch and its own dependencies come with the trainer's base image in both cases, so they
are installed once, into a separate "torch" environment that the other two see through a
.pth file (pip counts them as installed and does not install them again); the torch figure
is reported apart. kubetune itself is left out of both (a few hundred KB of source).

    python bench/trainer_image_size.py                # fresh venvs under /tmp
    python bench/trainer_image_size.py --skip-install # measure the venvs already there

Writes bench/results/trainer_image_size.json.
"""

import argparse
import json
import platform
import subprocess
import sys
import sysconfig
import tomllib
import venv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "trainer_image_size.json"
TORCH = "torch==2.13.0"  # the [trainer] pin; the base image's build


def dependency_sets() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    base = list(project["dependencies"])
    return {
        "before": base + extras["operator"] + extras["trainer"],
        "after": base + extras["trainer"],
    }


def site_packages(env: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    return env / relative


def make_env(env: Path, torch_env: Path | None) -> Path:
    venv.EnvBuilder(clear=True, with_pip=True).create(env)
    if torch_env is not None:
        (site_packages(env) / "torch-from-base-image.pth").write_text(
            f"{site_packages(torch_env)}\n"
        )
    return env / "bin" / "python"


def pip_install(python: Path, requirements: list[str]) -> None:
    subprocess.run([python, "-m", "pip", "install", "-q", *requirements], check=True)


def size_bytes(path: Path) -> int:
    """Bytes on disk, as `du -s` counts them."""
    done = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True, text=True)
    return int(done.stdout.split()[0])


def distributions(env: Path) -> list[str]:
    """name==version of what pip installed into the environment itself."""
    found = []
    for info in site_packages(env).glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        if name not in ("pip", "setuptools"):
            found.append(f"{name}=={version}")
    return sorted(found, key=str.lower)


def own_site_size(env: Path) -> int:
    """site-packages without pip and setuptools, which every venv has and no image adds."""
    site = site_packages(env)
    skip = [p for p in site.iterdir() if p.name.split("-")[0] in ("pip", "setuptools")]
    return size_bytes(site) - sum(size_bytes(p) for p in skip)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kubetune-image-size"))
    parser.add_argument("--skip-install", action="store_true", help="Reuse the venvs there.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args()

    torch_env = options.workdir / "torch"
    sets = dependency_sets()
    if not options.skip_install:
        pip_install(make_env(torch_env, None), [TORCH])
        for name, requirements in sets.items():
            pip_install(make_env(options.workdir / name, torch_env), requirements)

    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "platform": platform.machine(),
        "note": "Site-packages bytes (du) of the trainer image's pip install, torch excluded "
        "(it comes with the base image in both cases; its CPU build's size is given apart, the "
        "CUDA build is several GB); pip and setuptools excluded.",
        "torch_cpu_with_its_dependencies_bytes": own_site_size(torch_env),
    }
    for name, requirements in sets.items():
        env = options.workdir / name
        report[name] = {
            "requirements": requirements,
            "bytes": own_site_size(env),
            "distributions": distributions(env),
        }
    before, after = report["before"]["bytes"], report["after"]["bytes"]
    report["saved_bytes"] = before - after
    report["saved_fraction"] = round((before - after) / before, 3)
    with_torch = report["torch_cpu_with_its_dependencies_bytes"]
    report["with_torch_cpu"] = {"before": before + with_torch, "after": after + with_torch}
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    mib = 1 << 20
    print(
        f"before {before / mib:.0f} MiB, after {after / mib:.0f} MiB "
        f"(saves {(before - after) / mib:.0f} MiB, {report['saved_fraction']:.0%}); "
        f"torch (CPU) {with_torch / mib:.0f} MiB apart"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
