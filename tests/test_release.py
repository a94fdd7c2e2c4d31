"""The release path: versions kept in step, the workflow that ships both images and the
chart, and base images pinned in both Dockerfiles."""

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripts import check_versions

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
DOCKERFILES = {
    "kubetune-operator": ROOT / "operator" / "Dockerfile",
    "kubetune-trainer": ROOT / "trainer-image" / "Dockerfile",
}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def repo_copy(tmp_path: Path) -> Path:
    """pyproject.toml and the chart's Chart.yaml and values.yaml, to edit."""
    (tmp_path / "charts" / "kubetune").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name in ("Chart.yaml", "values.yaml"):
        shutil.copy(ROOT / "charts" / "kubetune" / name, tmp_path / "charts" / "kubetune" / name)
    return tmp_path


def edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_the_repository_versions_agree() -> None:
    assert check_versions.problems(ROOT) == []
    assert check_versions.problems(ROOT, f"v{VERSION}") == []
    assert check_versions.problems(ROOT, f"refs/tags/v{VERSION}") == []


def test_a_tag_for_another_version_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_versions.main(["v99.0.0"]) == 1
    assert capsys.readouterr().err == (
        f"check_versions: tag 'v99.0.0' is not v{VERSION} (pyproject.toml's version)\n"
    )
    assert check_versions.main([f"v{VERSION}"]) == 0


def test_a_chart_out_of_step_names_each_field(tmp_path: Path) -> None:
    root = repo_copy(tmp_path)
    chart = root / "charts" / "kubetune" / "Chart.yaml"
    values = root / "charts" / "kubetune" / "values.yaml"
    edit_yaml(chart, lambda c: c.update(version="0.2.0"))
    edit_yaml(values, lambda v: v["defaults"].update(trainerImage="r/kubetune-trainer:0.0.9"))
    edit_yaml(values, lambda v: v["image"].update(tag="0.0.9"))
    found = check_versions.problems(root)
    assert len(found) == 3, found
    assert found[0].startswith("charts/kubetune/Chart.yaml: version is '0.2.0'")
    assert "image.tag is '0.0.9'" in found[1]
    assert "defaults.trainerImage 'r/kubetune-trainer:0.0.9'" in found[2]


def test_app_version_must_match_too(tmp_path: Path) -> None:
    root = repo_copy(tmp_path)
    edit_yaml(root / "charts" / "kubetune" / "Chart.yaml", lambda c: c.update(appVersion="1.0.0"))
    found = check_versions.problems(root)
    assert any(
        line.startswith("charts/kubetune/Chart.yaml: appVersion is '1.0.0'") for line in found
    )
    assert any("trainerImage" in line for line in found)  # no longer follows appVersion


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def test_release_runs_on_version_tags_only() -> None:
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers = {str(k): v for k, v in workflow().items()}["True"]
    assert triggers == {"push": {"tags": ["v*"]}}
    assert workflow()["permissions"] == {"contents": "read"}


def test_every_action_is_pinned_by_commit_sha() -> None:
    uses = re.findall(r"uses:\s*(\S+)", WORKFLOW.read_text())
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
    used = {ref.split("@")[0] for ref in uses}
    assert {
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/build-push-action",
    } <= used


def test_versions_are_checked_against_the_tag_before_anything_ships() -> None:
    runs = " ".join(s.get("run", "") for s in steps("versions"))
    assert 'scripts/check_versions.py "$GITHUB_REF_NAME"' in runs
    jobs = workflow()["jobs"]
    assert "versions" in jobs["test"]["needs"]
    assert {"versions", "test"} <= set(jobs["images"]["needs"])
    assert "images" in jobs["chart"]["needs"]  # the chart never points at missing images


def test_the_test_command_runs() -> None:
    assert any(s.get("run") == "bash scripts/test.sh" for s in steps("test"))


def test_images_build_for_their_platforms_and_push_to_ghcr() -> None:
    job = workflow()["jobs"]["images"]
    assert job["permissions"]["packages"] == "write"
    include = job["strategy"]["matrix"]["include"]
    assert {m["image"]: ROOT / m["dockerfile"] for m in include} == DOCKERFILES
    platforms = {m["image"]: m["platforms"] for m in include}
    assert platforms == {
        "kubetune-operator": "linux/amd64,linux/arm64",
        # pytorch/pytorch's CUDA images have no arm64 manifest: an arm64 build fails at FROM.
        "kubetune-trainer": "linux/amd64",
    }
    assert base_images(DOCKERFILES["kubetune-trainer"])[0].startswith("pytorch/pytorch:")
    (build,) = [s for s in job["steps"] if "docker/build-push-action" in s.get("uses", "")]
    assert build["with"]["context"] == "."
    assert build["with"]["platforms"] == "${{ matrix.platforms }}"
    assert build["with"]["push"] is True
    assert workflow()["env"]["REGISTRY"] == "ghcr.io/kubetune"
    tags = build["with"]["tags"]
    assert tags == "${{ env.REGISTRY }}/${{ matrix.image }}:${{ needs.versions.outputs.version }}"
    # The chart's default repositories are the ones pushed to.
    values = yaml.safe_load((ROOT / "charts" / "kubetune" / "values.yaml").read_text())
    assert values["image"]["repository"] == "ghcr.io/kubetune/kubetune-operator"
    assert values["defaults"]["trainerImage"].rpartition(":")[0] == (
        "ghcr.io/kubetune/kubetune-trainer"
    )


def test_the_chart_is_pushed_as_an_oci_artifact() -> None:
    run = " ".join(s.get("run", "") for s in steps("chart"))
    assert "helm package charts/kubetune --destination dist" in run
    assert 'helm push "dist/kubetune-${VERSION}.tgz" "oci://${REGISTRY}/charts"' in run


def base_images(dockerfile: Path) -> list[str]:
    """Every FROM's image, ARG defaults substituted."""
    args: dict[str, str] = {}
    images = []
    for line in dockerfile.read_text().splitlines():
        if match := re.match(r"ARG (\w+)=(\S+)", line):
            args.setdefault(match[1], match[2])
        elif match := re.match(r"FROM (\S+)", line):
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], match[1]))
    return images


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_images_are_pinned(name: str) -> None:
    images = base_images(DOCKERFILES[name])
    assert images
    for image in images:
        if "@sha256:" in image:
            continue
        # No digest: at least an exact version tag, never latest or a bare major.
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest", image
        assert re.match(r"\d+\.\d+\.\d+", tag), image


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfiles_build_from_the_repository_root(name: str) -> None:
    """What README and the workflow pass as the context: every COPY source is there."""
    for line in DOCKERFILES[name].read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{name}: COPY {source}"
    readme = (ROOT / "README.md").read_text()
    dockerfile = DOCKERFILES[name].relative_to(ROOT)
    assert re.search(rf"docker buildx build .*-t \S+/{name}:\S+ -f {dockerfile} --push \.", readme)
