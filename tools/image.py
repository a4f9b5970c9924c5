"""``make image``: build the image from the Dockerfile and run it, as a user's node would.

Builds with buildah (``bud --isolation chroot --storage-driver vfs``: no daemon, works as root in
CI), else docker or podman where present. The bases are the Dockerfile's (pinned by digest) when a
registry answers; where none does (CI, this machine), a Debian 12 root file system with python3 made
by mmdebstrap stands in for both (``IMAGE_BASE=NAME`` to give one). Then, in the built image's own
file system (buildah; with docker/podman: ``docker run``), as the image's user:

- the image's user is 65532:65532, and ENTRYPOINT/CMD are what the manifests and chart expect
  (they pass ``args`` only);
- ``--version``; ``labels --fixture dgx-a100-mixed --mig-strategy mixed`` prints the same labels as
  this checkout's package; ``run --oneshot --sink file --output-file`` writes into a temp dir;
- no file or directory outside the temp dirs is writable by 65532 (owned by it, or writable by all);
- the image's size and the build time are printed.

Exit 0 when all hold; 1 with one line per failed check; 2 when no engine can build here.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/mig-labeler:dev"
LOCAL_BASES = {"BASE": ("localhost/mig-labeler-base:bookworm", "python3"),  # the runtime: Python alone
               "BUILD_BASE": ("localhost/mig-labeler-build-base:bookworm", "python3,python3-pip")}
USER = "65532:65532"
ENTRYPOINT = ["/usr/bin/python3", "-m", "mig_labeler"]
CMD = ["run"]
LABELS = ["labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp"]
STORAGE = ["--storage-driver", "vfs"]
TEMP_DIRS = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")


def say(text: str) -> None:
    print(f"image: {text}", flush=True)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]


def registry_answers() -> bool:
    try:
        urllib.request.urlopen("https://registry-1.docker.io/v2/", timeout=5)  # noqa: S310 - a fixed https URL
    except urllib.error.HTTPError:
        return True  # 401: it answered
    except OSError:
        return False
    return True


def local_bases(work: Path) -> dict[str, str]:
    """Debian 12 root file systems standing in for the Dockerfile's bases, as images: python3 alone
    for the runtime, with pip for the build stage. Made once, then reused."""
    made = {}
    for arg, (name, packages) in LOCAL_BASES.items():
        made[arg] = name
        if run(["buildah", "inspect", *STORAGE, "--type", "image", name]).returncode == 0:
            continue
        if shutil.which("mmdebstrap") is None:
            sys.exit("image: no registry answers and mmdebstrap is not installed (apt-get install mmdebstrap), "
                     "or give IMAGE_BASE=IMAGE")
        say(f"no registry answers: making {name} from Debian 12 packages ({packages}; mmdebstrap, once)")
        tarball = work / f"{arg}.tar"
        done = run(["mmdebstrap", "--variant=minbase", f"--include={packages}", "--mode=root", "bookworm",
                    str(tarball)])
        if done.returncode != 0:
            sys.exit(f"image: mmdebstrap failed: {done.stderr.strip().splitlines()[-1:]}")
        container = run(["buildah", "from", *STORAGE, "scratch"]).stdout.strip()
        for step in (["buildah", "add", *STORAGE, container, str(tarball), "/"],
                     ["buildah", "commit", *STORAGE, "--rm", container, name]):
            done = run(step)
            if done.returncode != 0:
                sys.exit(f"image: {' '.join(step[:2])} failed: {done.stderr.strip()}")
    return made


def build(engine: str, bases: dict[str, str]) -> float:
    args = [a for arg, image in bases.items() for a in ("--build-arg", f"{arg}={image}")]
    ca = os.environ.get("PIP_CERT")  # a TLS-intercepting proxy's CA: pip in the build needs it too
    if ca and Path(ca).is_file():
        args += ["--secret", f"id=pip-ca,src={ca}"]
    if engine == "buildah":
        argv = ["buildah", "bud", "--isolation", "chroot", *STORAGE, "--layers=false", *args, "-t", TAG, "."]
    else:
        argv = [engine, "build", *args, "-t", TAG, "."]
    say(" ".join(argv))
    start = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, check=False)
    if done.returncode != 0:
        sys.exit(f"image: the Dockerfile did not build ({engine} exit {done.returncode})")
    return time.monotonic() - start


def config(engine: str) -> dict:
    if engine == "buildah":
        doc = json.loads(run(["buildah", "inspect", *STORAGE, "--type", "image", TAG]).stdout)
        return doc["OCIv1"]["config"]
    return json.loads(run([engine, "image", "inspect", TAG]).stdout)[0]["Config"]


class Rootfs:
    """The image's file system, mounted (buildah), and the image's entrypoint run in it as its user."""

    def __init__(self, image_config: dict) -> None:
        self.config = image_config
        self.container = run(["buildah", "from", *STORAGE, "--pull-never", TAG]).stdout.strip()
        self.path = Path(run(["buildah", "mount", *STORAGE, self.container]).stdout.strip())

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        argv = ["chroot", f"--userspec={self.config.get('User')}", str(self.path),
                *self.config["Entrypoint"], *args]
        return subprocess.run(argv, env=env, text=True, capture_output=True, check=False, cwd="/", timeout=120)

    def writable(self) -> list[str]:
        """Paths the image's user could write outside the temp dirs."""
        uid = int(str(self.config.get("User", "0")).split(":")[0])
        found = []
        for folder, dirs, files in os.walk(self.path):
            inside = "/" + os.path.relpath(folder, self.path).lstrip(".")
            if inside.startswith(TEMP_DIRS) or inside.startswith(("/proc", "/sys", "/dev")):
                dirs[:] = []
                continue
            for name in [*dirs, *files]:
                if f"{inside.rstrip('/')}/{name}" in TEMP_DIRS:
                    continue
                info = os.lstat(os.path.join(folder, name))
                if stat.S_ISLNK(info.st_mode):
                    continue
                if info.st_uid == uid or info.st_mode & stat.S_IWOTH:
                    found.append(f"{inside.rstrip('/')}/{name}")
        return found

    def close(self) -> None:
        run(["buildah", "umount", *STORAGE, self.container])
        run(["buildah", "rm", *STORAGE, self.container])


def checks(engine: str, image_config: dict) -> list[str]:
    failed = []
    if image_config.get("User") != USER:
        failed.append(f"the image's user is {image_config.get('User')!r}, not {USER}")
    if image_config.get("Entrypoint") != ENTRYPOINT or image_config.get("Cmd") != CMD:
        failed.append(f"ENTRYPOINT/CMD are {image_config.get('Entrypoint')} {image_config.get('Cmd')}, "
                      f"not {ENTRYPOINT} {CMD} (the manifests pass args only)")
    if engine != "buildah":
        say(f"{engine}: the run checks need buildah's mounted file system; built and inspected only")
        return failed
    wheel = ROOT / "build" / "wheel-check" / "venv" / "bin" / "mig-labeler"  # make wheel-check's install
    reference = [str(wheel)] if wheel.exists() else [sys.executable, "-m", "mig_labeler"]
    expected = run([*reference, *LABELS], cwd=ROOT)
    fs = Rootfs(image_config)
    try:
        version = fs.run(["--version"])
        say(f"--version: {version.stdout.strip() or version.stderr.strip()}")
        if version.returncode != 0:
            failed.append(f"--version exited {version.returncode}: {version.stderr.strip()[-300:]}")
        labels = fs.run(LABELS)
        if labels.returncode != 0 or labels.stdout != expected.stdout:
            failed.append(f"labels in the image differ from {reference[0]}'s (exit {labels.returncode}): "
                          f"{labels.stderr.strip()[-300:]}")
        else:
            say(f"labels --fixture dgx-a100-mixed --mig-strategy mixed: {len(labels.stdout.splitlines())} labels, "
                f"the same as {'the wheel' if wheel.exists() else 'this checkout'} prints")
        out = Path(tempfile.mkdtemp(dir=fs.path / "tmp"))
        out.chmod(0o777)
        inside = "/" + str(out.relative_to(fs.path))
        oneshot = fs.run(["run", "--oneshot", "--sink", "file", "--fixture", "dgx-a100-mixed", "--mig-strategy",
                          "mixed", "--metrics-port", "0", "--output-file", f"{inside}/gfd"])
        written = (out / "gfd").read_text() if (out / "gfd").exists() else ""
        if oneshot.returncode != 0 or "nvidia.com/mig-3g.20gb.count=4" not in written:
            failed.append(f"run --oneshot --output-file wrote no labels (exit {oneshot.returncode}): "
                          f"{oneshot.stderr.strip()[-300:]}")
        else:
            say(f"run --oneshot --sink file: {len(written.splitlines())} lines in {inside}/gfd")
        writable = fs.writable()
        if writable:
            failed.append(f"writable by the image's user outside {', '.join(TEMP_DIRS)}: {', '.join(writable[:10])}")
    finally:
        fs.close()
    return failed


def size(engine: str) -> str:
    if engine == "buildah":
        return run(["buildah", "images", *STORAGE, "--format", "{{.Size}}", TAG]).stdout.strip()
    return run([engine, "image", "inspect", "--format", "{{.Size}}", TAG]).stdout.strip() + " bytes"


def main() -> int:
    engine = next((e for e in ("buildah", "podman", "docker") if shutil.which(e)), None)
    if engine == "docker" and run(["docker", "info"]).returncode != 0:
        engine = None  # the CLI without an engine to talk to
    if engine is None:
        print("image: no buildah, podman or docker engine here (apt-get install buildah)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        given = os.environ.get("IMAGE_BASE")
        if given:
            bases = {"BUILD_BASE": given, "BASE": given}
        elif registry_answers() or engine != "buildah":
            bases = {}
        else:
            bases = local_bases(Path(tmp))
        took = build(engine, bases)
    image_config = config(engine)
    failed = checks(engine, image_config)
    say(f"built in {took:.0f} s from {', '.join(bases.values()) or 'the Dockerfile bases'}; size {size(engine)}")
    for line in failed:
        print(f"image: FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
