"""Boot the cached Debian 12 guest (guest/build-image.sh) in pure cgroup v2 or v1, run a job there, bring results back.

Usage (root): guest/run.py v2|v1 [--script FILE] [--results DIR] [--timeout MIN] [--test-timeout MIN] [PYTEST ARGS]
The working tree (tracked and untracked files, as `git ls-files` sees them) goes into a 9p share with a job:
FILE if given (a shell script run in /opt/ctop with $CTOP_GUEST_RESULTS set), then `./setup.sh guest-test PYTEST ARGS`
(offline, from the image's packages and wheelhouse) unless FILE is given without PYTEST ARGS. The guest powers off
when the job ends; results/ (job.log, job.rc, junit.xml, whatever the script wrote) and console.log are copied to
--results (default ./guest-results/MODE). The disk is a temporary qcow2 overlay, so every run starts from the same
image. qemu runs at nice level $CTOP_GUEST_NICE (default 15) with -smp $CTOP_GUEST_SMP (default 2); KVM is used only
where it can boot a stock kernel ($CTOP_GUEST_ACCEL=kvm|tcg forces one); $CTOP_GUEST_APPEND goes on the kernel's
command line. SIGTERM or Ctrl-C kills the qemu it
started, keeps the partial results and removes its temporary files.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from types import FrameType

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(HERE)
CACHE = os.environ.get("CTOP_GUEST_CACHE", "/var/cache/ctop-tests/guest")
V1_ARGS = "systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"
SHARE_TAG = "ctop"
GUEST_TREE = "/opt/ctop"
GUEST_SHARE = "/mnt/ctop-share"
WHEELHOUSE = "/opt/ctop-wheelhouse"
TCG_PATIENCE = "6"  # a TUI's first screen, a docker run, a scrape took 5-10x longer in TCG guests than here
TCG_CHURN_SCALE = "0.1"  # test_churn: 30 containers and 200 cgroups instead of 300 and 2000
WORK_PARENT = "/var/tmp"
WORK_PREFIX = "ctoph-guest-run."  # then the pid of the run that owns it
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def accelerator() -> str:
    """'kvm' where /dev/kvm is real hardware virtualisation, else 'tcg' (PVM cannot boot a stock Debian kernel)."""
    forced = os.environ.get("CTOP_GUEST_ACCEL", "")
    if forced in ("kvm", "tcg"):
        return forced
    if os.path.isdir("/sys/module/kvm_pvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return "kvm" if (" vmx" in flags or " svm" in flags) else "tcg"


def qemu_command(mode: str, disk: str, share: str, console: str, accel: str) -> list[str]:
    """The qemu command line: direct kernel boot, virtio disk, the 9p share, serial console to a file, no network."""
    append = "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=1 panic=10"
    if mode == "v1":
        append += " " + V1_ARGS
    extra = os.environ.get("CTOP_GUEST_APPEND", "").strip()
    if extra:  # e.g. "loglevel=7 softlockup_all_cpu_backtrace=1" to see a stuck task's stack on the console
        append += " " + extra
    nice = os.environ.get("CTOP_GUEST_NICE", "15")
    cpu = ["-cpu", "host"] if accel == "kvm" else ["-cpu", "max"]
    return ["nice", "-n", nice, "qemu-system-x86_64", "-accel", accel, *cpu,
            "-smp", os.environ.get("CTOP_GUEST_SMP", "2"), "-m", os.environ.get("CTOP_GUEST_MEMORY", "4096"),
            "-kernel", os.path.join(CACHE, "vmlinuz"), "-initrd", os.path.join(CACHE, "initrd.img"),
            "-append", append,
            "-drive", f"file={disk},if=virtio,format=qcow2,cache=unsafe",
            "-virtfs", f"local,path={share},mount_tag={SHARE_TAG},security_model=none,id={SHARE_TAG}",
            "-nic", "none", "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{console}"]


def tar_tree(dest: str) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored) as one tar: 9p is slow per file."""
    out = subprocess.run(["git", "-C", TREE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    with tarfile.open(dest, "w") as tar:
        for rel in sorted({p for p in out.decode().split("\0") if p}):
            if os.path.lexists(os.path.join(TREE, rel)):
                tar.add(os.path.join(TREE, rel), arcname=rel, recursive=False)


def patience(accel: str) -> str:
    """How much longer the tests' helpers wait for things in the guest (CTOP_TEST_PATIENCE there): emulation (TCG)
    runs everything several times slower than this host; $CTOP_GUEST_PATIENCE overrides it."""
    return os.environ.get("CTOP_GUEST_PATIENCE", "1" if accel == "kvm" else TCG_PATIENCE)


def churn_scale(accel: str) -> str:
    """The share of test_churn's 300 containers and 2000 cgroups the guest churns (CHURN_SCALE there): under TCG the
    whole of it took more than 25 minutes; $CTOP_GUEST_CHURN_SCALE overrides it."""
    return os.environ.get("CTOP_GUEST_CHURN_SCALE", "1" if accel == "kvm" else TCG_CHURN_SCALE)


def job_script(script: str | None, pytest_args: list[str], test_minutes: float = 0, wait_factor: str = "1",
               churn: str = "1") -> str:
    """The shell job the guest runs from the share."""
    lines = ["set -u", f"rm -rf {GUEST_TREE}", f"mkdir -p {GUEST_TREE}",
             f"tar -C {GUEST_TREE} -xf {GUEST_SHARE}/src.tar", f"cd {GUEST_TREE}",
             f"export CTOP_GUEST_RESULTS={GUEST_SHARE}/results CTOP_WHEELHOUSE={WHEELHOUSE}",
             f"export CTOP_TEST_PATIENCE={shlex.quote(wait_factor)} CHURN_SCALE={shlex.quote(churn)}",
             "echo \"guest: $(uname -r), $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup\"", "rc=0"]
    if script is not None:
        lines.append(f"sh {GUEST_SHARE}/script.sh || rc=$?")
    if script is None or pytest_args:
        args = " ".join(shlex.quote(a) for a in pytest_args)
        # SIGINT makes pytest stop, print its summary and write the junit file with what ran.
        limit = f"timeout -k 120 -s INT {test_minutes:g}m " if test_minutes > 0 else ""
        lines.append(f"{limit}./setup.sh guest-test --junitxml={GUEST_SHARE}/results/junit.xml {args} || rc=$?")
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run one guest job and return its exit code (124 when the guest did not finish in time)."""
    parser = argparse.ArgumentParser(prog="guest/run.py", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("mode", choices=["v2", "v1"])
    parser.add_argument("--script", help="a shell script to run in the guest (in /opt/ctop) before the tests")
    parser.add_argument("--results", help="where results go (default ./guest-results/MODE)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("CTOP_GUEST_TIMEOUT", "120")),
                        help="minutes before the guest is killed (default 120)")
    parser.add_argument("--test-timeout", type=float, default=0,
                        help="minutes the tests may take in the guest before pytest is interrupted (default no limit)")
    opts, pytest_args = parser.parse_known_args(argv)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    if not os.path.exists(os.path.join(CACHE, "rootfs.raw")):
        print(f"guest: no image in {CACHE}; build it with guest/build-image.sh (or make guest).", file=sys.stderr)
        return 2
    results = os.path.abspath(opts.results or os.path.join("guest-results", opts.mode))
    work = tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}.", dir=WORK_PARENT)
    proc: subprocess.Popen[bytes] | None = None
    finished = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        # `timeout` signals its child and then its whole process group: a second signal must not cut the cleanup short.
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    for each in STOP_SIGNALS[:2]:
        signal.signal(each, stop)
    share = os.path.join(work, "share")
    console = os.path.join(work, "console.log")
    try:
        os.makedirs(os.path.join(share, "results"))
        tar_tree(os.path.join(share, "src.tar"))
        if opts.script:
            shutil.copy(opts.script, os.path.join(share, "script.sh"))
        accel = accelerator()
        with open(os.path.join(share, "job.sh"), "w") as f:
            f.write(job_script(opts.script, pytest_args, opts.test_timeout, patience(accel), churn_scale(accel)))
        disk = os.path.join(work, "overlay.qcow2")
        make_overlay(disk)
        cmd = qemu_command(opts.mode, disk, share, console, accel)
        print(f"guest: booting {opts.mode} ({accel}); console in {console}", file=sys.stderr)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        booted = False
        deadline = t0 + opts.timeout * 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(5)
            if not booted and _console_has(console, "ctoph-guest: job started"):
                booted = True
                print(f"guest: booted in {time.monotonic() - t0:.0f} s; job running", file=sys.stderr)
        if proc.poll() is None:
            print(f"guest: no power-off after {opts.timeout:g} min; killing qemu", file=sys.stderr)
            return 124  # the finally clause kills qemu and keeps the partial results
        print(f"guest: {time.monotonic() - t0:.0f} s from boot to power-off", file=sys.stderr)
        finished = True
        return _collect(share, console, results, timed_out=False)
    finally:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if not finished and os.path.isdir(os.path.join(share, "results")):
            # Timed out or interrupted (qemu may have had the signal too and be gone already): keep what the job
            # wrote so far (job.log, console.log) before the share goes.
            _collect(share, console, results, timed_out=True)
        shutil.rmtree(work, ignore_errors=True)


def make_overlay(disk: str) -> None:
    """A qcow2 overlay over the cached image: the guest writes there, the image stays as built."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                    os.path.join(CACHE, "rootfs.raw"), disk], check=True)


def _console_has(console: str, text: str) -> bool:
    try:
        with open(console, "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


def _collect(share: str, console: str, results: str, timed_out: bool) -> int:
    """Copy results/ and the console log to ``results``; the job's exit code."""
    shutil.rmtree(results, ignore_errors=True)
    shutil.copytree(os.path.join(share, "results"), results)
    if os.path.exists(console):
        shutil.copy(console, os.path.join(results, "console.log"))
    print(f"guest: results in {results}", file=sys.stderr)
    if timed_out:
        return 124
    try:
        with open(os.path.join(results, "job.rc")) as f:
            return int(f.read().strip() or "1")
    except (OSError, ValueError):
        print("guest: the job left no exit code (see console.log)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
