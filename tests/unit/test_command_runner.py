"""CommandRunner: the hard deadline kills the whole process group, nothing leaks in, and a daemon
a command leaves behind does not hold the run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from gardien.command_runner import DEFAULT_ENV, INHERIT, CommandRunner


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting for a late reaper (docs/lab.md section 9)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def dies(pid: int) -> bool:
    """``pid`` is dead, or dies within 10 s (SIGKILL to a group is delivered, not awaited)."""
    deadline = time.monotonic() + 10
    while not dead(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return dead(pid)


def test_deadline_kills_the_command_and_what_it_started() -> None:
    result = CommandRunner().run(["sh", "-c", "sleep 60 & echo $!; wait"], timeout=0.5)
    assert result.timed_out
    assert result.returncode is None
    assert not result.ok
    assert result.describe().startswith("sh timed out after ")
    grandchild = int(result.stdout.split()[0])
    assert not Path(f"/proc/{result.pid}").exists()
    assert dies(grandchild)


def test_deadline_kills_a_stopped_process_group() -> None:
    """A frozen client (SIGSTOPped, as by a test's hang) is killed with its group all the same."""
    script = "sleep 60 & echo $!; kill -STOP $!; wait"
    result = CommandRunner().run(["sh", "-c", script], timeout=0.5)
    assert result.timed_out
    assert dies(int(result.stdout.split()[0]))


def test_output_status_and_stdin() -> None:
    result = CommandRunner().run(["sh", "-c", "cat; echo err >&2; exit 3"], 5, stdin="in")
    assert (result.returncode, result.stdout, result.stderr) == (3, "in", "err\n")
    assert not result.timed_out
    assert result.describe() == "sh exited 3: err"


def test_undecodable_output_is_replaced_not_fatal() -> None:
    result = CommandRunner().run(["printf", "vendor \\377\\n"], 5)
    assert result.ok and result.stdout == "vendor \ufffd\n"


def test_missing_program_is_a_result_not_an_exception() -> None:
    result = CommandRunner().run(["/nonexistent/gardien-tool"], 5)
    assert not result.ok and result.returncode is None and result.pid == 0
    assert result.error.startswith("cannot run /nonexistent/gardien-tool")
    assert result.describe() == result.error


def test_prefix_and_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWD", "leaked")  # smbclient would take it as a password
    result = CommandRunner(prefix=["env"]).run(["sh", "-c", "echo ${PASSWD:-none}"], 5)
    assert result.argv[0] == "env"
    assert result.stdout == "none\n"
    assert os.environ["PASSWD"] == "leaked"


def test_environment_policy_of_the_runner_and_of_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARDIEN_TEST_MARK", "inherited")
    show = ["sh", "-c", "echo ${GARDIEN_TEST_MARK:-none}"]
    assert CommandRunner(env=INHERIT).run(show, 5).stdout == "inherited\n"
    assert CommandRunner(env=INHERIT).run(show, 5, env=DEFAULT_ENV).stdout == "none\n"
    own = {**DEFAULT_ENV, "GARDIEN_TEST_MARK": "own"}
    assert CommandRunner().run(show, 5, env=own).stdout == "own\n"
    assert CommandRunner().run(show, 5, env=INHERIT).stdout == "inherited\n"


def test_recording_is_opt_in() -> None:
    quiet = CommandRunner()
    quiet.run(["true"], 5)
    assert quiet.ran == [] and quiet.results == []

    runner = CommandRunner(prefix=["env"], record=True)
    first = runner.run(["sh", "-c", "exit 3"], 5)
    runner.run(["/nonexistent/program"], 5)
    runner.spawn(["true"]).wait()
    assert runner.ran == [
        ["env", "sh", "-c", "exit 3"],
        ["env", "/nonexistent/program"],
        ["env", "true"],
    ]
    assert [r.returncode for r in runner.results] == [3, 127]  # env: not found
    assert runner.results[0] is first


def test_run_does_not_wait_for_a_daemon_holding_its_output(tmp_path: Path) -> None:
    """``apachectl -k start`` leaves a daemon with the command's stdout; run() returns anyway."""
    pidfile = tmp_path / "daemon.pid"
    script = f"setsid sleep 60 & echo $! > {pidfile}; echo started"
    result = CommandRunner().run(["sh", "-c", script], timeout=20)
    try:
        assert result.ok and not result.timed_out and result.stdout == "started\n"
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_spawn_detaches_and_logs_to_a_file(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "daemon.log"
    # field 6 of /proc/PID/stat: the session id, the pid itself for a session leader
    script = "echo $$ $(cut -d' ' -f6 /proc/$$/stat); echo err >&2"
    proc = CommandRunner().spawn(["sh", "-c", script], log_file)
    assert proc.wait(timeout=10) == 0
    session, err = log_file.read_text().splitlines()
    assert session == f"{proc.pid} {proc.pid}" and err == "err"
