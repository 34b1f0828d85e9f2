"""The README's five-minute tour, run as a new user runs it, so that the README cannot drift from
the code.

Every fenced block of the tour section ("## A five-minute tour" up to the next "## " heading) is
a ```console block (or the ```python client snippet, which tests/e2e/test_client.py runs): in a
console block a line starting with "$ " is a command, a line starting with "#" is a comment,
and any other non-blank line is the output the README shows for the command above it.

The test makes a directory that stands for a fresh clone after `make run`: `.venv` there is this
interpreter's environment, and the server is started the way `make run` starts it (the Makefile's
recipe: `strongroom db upgrade`, then `strongroom serve --dev-key`), on a free loopback port
instead of 8000. Then every command runs in order, from that directory, in one `bash` with
`set -euo pipefail` and a fresh shell's environment: no tour variable, and no `.venv/bin` on PATH
(the tour activates it). `make TARGET` runs the target's recipe from the Makefile (its install
prerequisite left out: the environment is installed).

It fails when a command fails (a renamed route, a changed flag, a variable set nowhere) and when an
output shown differs from the real one in its shape: JSON is compared member by member (the same
keys, the same types, strings equal once ids, times and hashes are masked), text line by line with
the same masks. Numbers in JSON are compared by type only; numbers in text must be equal.

Run as a script (`python -m tests.e2e.test_readme_tour`) it prints every command of the tour with
its real output, for updating the README after an intended change.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import strongroom
from tests.support.flags import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
TOUR_HEADING = "## A five-minute tour"
TOUR_BLOCK = "```console"
PYTHON_BLOCK = "```python"
PROMPT = "$ "
VENV_BIN = ".venv/bin"  # $(BIN) in the Makefile
BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves; the test's server is elsewhere
# The environment a fresh shell would have; nothing else reaches the tour.
KEPT_ENVIRONMENT = ("HOME", "LANG", "LC_ALL", "TMPDIR")
# The tour takes about a minute of CPU (mostly the CLI's start-up, run after run); past these it
# is stuck, not slow.
SERVER_START_S_MAX = 60.0
TOUR_S_MAX = 480.0
TEST_S_MAX = 600
# The server publishes a checkpoint of every log that grew at this interval; a publication in the
# middle of the tour would change the counts it prints, so it is set past the tour's length.
CHECKPOINT_INTERVAL_S = 3600

# Parts of an output that differ from run to run, each replaced before comparing.
MASKS: Sequence[tuple[re.Pattern[str], str]] = (
    (re.compile(r"(?i)^(date|content-length): .*$"), r"\1: <value>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "<time>"),
    (re.compile(r"\b[a-z]+_[0-9a-z]{26}\b"), "<id>"),  # ldg_, acc_, tr_, req_, key_ ...
    # base64 or base64url (hashes, signatures, keys, fingerprints): long runs of its alphabet
    # with both cases in them
    (
        re.compile(r"(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])[A-Za-z0-9+/_-]{20,}={0,2}"),
        "<base64>",
    ),
    (re.compile(r"\b\d{16}\b"), "<microseconds>"),  # a time since the epoch
    (re.compile(r"\b0\d{3}\b"), "<revision>"),  # a migration, as `db upgrade` names it
)


@dataclass(frozen=True)
class Step:
    """One command of the tour and the output the README shows for it (blank lines left out)."""

    line: int  # in README.md, from 1
    command: str
    shown: tuple[str, ...]


def tour_steps(readme: str) -> list[Step]:
    """The tour's commands, in order, from the console blocks of its section."""
    lines = readme.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == TOUR_HEADING]
    assert len(starts) == 1, f"README.md has {len(starts)} {TOUR_HEADING!r} headings"
    steps: list[Step] = []
    command: tuple[int, str] | None = None
    shown: list[str] = []
    in_block = False
    in_python = False  # the client snippet: tests/e2e/test_client.py runs it
    for i in range(starts[0] + 1, len(lines)):
        line = lines[i]
        if not in_block and not in_python and line.startswith("## "):
            break
        if in_python:
            in_python = not line.startswith("```")
            continue
        if line.strip() == PYTHON_BLOCK:
            in_python = True
            continue
        if line.startswith("```"):
            if in_block:
                in_block = False
                continue
            assert line.strip() == TOUR_BLOCK, (
                f"README.md:{i + 1}: every code block of the tour is a {TOUR_BLOCK} block, run "
                f"by this test; found {line.strip()!r}"
            )
            in_block = True
            continue
        if not in_block:
            continue
        if line.startswith(PROMPT):
            if command is not None:
                steps.append(Step(command[0], command[1], tuple(shown)))
            text = line[len(PROMPT) :].strip()
            assert not text.endswith("\\"), (
                f"README.md:{i + 1}: a command continues on the next line"
            )
            command, shown = (i + 1, text), []
        elif line.strip() and not line.startswith("#"):
            assert command is not None, f"README.md:{i + 1}: output before any command"
            shown.append(line)
    assert not in_block, "the tour's last code block is not closed"
    if command is not None:
        steps.append(Step(command[0], command[1], tuple(shown)))
    return steps


def make_recipe(makefile: str, target: str) -> list[str]:
    """The recipe lines of `target` (tabs stripped, a line ending in a backslash joined with the
    next), with $(BIN), $(PORT) and $$ left as they are."""
    lines = makefile.splitlines()
    heads = [i for i, line in enumerate(lines) if re.match(rf"{re.escape(target)}\s*:", line)]
    assert len(heads) == 1, f"the Makefile has {len(heads)} rules for {target!r}"
    recipe: list[str] = []
    continued = False
    for line in lines[heads[0] + 1 :]:
        if not line.startswith("\t") and not continued:
            break
        text = line.strip() if continued else line[1:]
        if continued:
            recipe[-1] = recipe[-1][:-1].rstrip() + " " + text
        else:
            recipe.append(text)
        continued = text.endswith("\\")
    assert recipe, f"the Makefile's {target!r} has no recipe"
    for line in recipe:
        more = f"the {target!r} recipe line {line!r} uses more of make than this test runs"
        assert "$(" not in line.replace("$(BIN)", "").replace("$(PORT)", ""), more
        assert not line.startswith(("@", "-")), more
    return recipe


def recipe_commands(makefile: str, target: str, port: int) -> list[str]:
    """The commands `make target` runs, as make echoes them ($(BIN) is .venv/bin, $(PORT) the
    test's own port, $$ a $)."""
    return [
        line.replace("$(BIN)", VENV_BIN).replace("$(PORT)", str(port)).replace("$$", "$")
        for line in make_recipe(makefile, target)
    ]


def shell_command(step: Step, base_url: str, makefile: str) -> str:
    """What bash runs for a step: its command with the server's URL, or a make target's recipe,
    each line echoed first as make echoes it."""
    match = re.fullmatch(r"make (\w[\w-]*)", step.command)
    if match is None:
        return step.command.replace(BASE_URL, base_url)
    lines = []
    port = int(base_url.rsplit(":", 1)[1])
    for line in recipe_commands(makefile, match.group(1), port):
        lines += [f"echo {shlex.quote(line)}", line]
    return "\n".join(lines)


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def segments(lines: Sequence[str]) -> list[tuple[int, Any]]:
    """An output cut into JSON documents (a line starting with { or [ where one parses,
    perhaps over several lines) and text lines, with the index of each one's first line."""
    rows = [line.rstrip() for line in lines if line.strip()]
    decoder = json.JSONDecoder()
    found: list[tuple[int, Any]] = []
    i = 0
    while i < len(rows):
        if rows[i].startswith(("{", "[")):
            rest = "\n".join(rows[i:])
            with contextlib.suppress(json.JSONDecodeError):
                value, end = decoder.raw_decode(rest)
                if rest[end:] == "" or rest[end] == "\n":
                    found.append((i, value))
                    i += rest[:end].count("\n") + 1
                    continue
        found.append((i, rows[i]))
        i += 1
    return found


def json_differences(shown: Any, real: Any, where: str = "$") -> list[str]:
    """How `real` differs from `shown` in shape: members, types, and strings once masked."""
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return [f"{where}: an object in the README, {type(real).__name__} for real"]
        problems = []
        if missing := sorted(set(shown) - set(real)):
            problems.append(f"{where}: no {', '.join(missing)} (shown in the README)")
        if extra := sorted(set(real) - set(shown)):
            problems.append(f"{where}: {', '.join(extra)} not shown in the README")
        for key in shown:
            if key in real:
                problems += json_differences(shown[key], real[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(real, list):
            return [f"{where}: an array in the README, {type(real).__name__} for real"]
        if len(shown) != len(real):
            return [f"{where}: {len(shown)} items in the README, {len(real)} for real"]
        return [
            problem
            for index, (a, b) in enumerate(zip(shown, real, strict=True))
            for problem in json_differences(a, b, f"{where}[{index}]")
        ]
    if isinstance(shown, str):
        if not isinstance(real, str) or mask(shown) != mask(real):
            return [f"{where}: {shown!r} in the README, {real!r} for real"]
        return []
    if shown is None or isinstance(shown, bool):
        return [] if real is shown else [f"{where}: {shown!r} in the README, {real!r} for real"]
    if type(shown) is not type(real):  # int or float: the type, not the value
        return [f"{where}: {shown!r} in the README, {real!r} for real"]
    return []


def output_differences(shown: Sequence[str], real: Sequence[str]) -> list[str]:
    """How a real output differs from what the README shows ([] when it keeps its shape)."""
    a, b = segments(shown), segments(real)
    problems = []
    for (line_a, value_a), (_, value_b) in zip(a, b, strict=False):
        where = f"output line {line_a + 1}"
        if isinstance(value_a, str) or isinstance(value_b, str):
            if not (isinstance(value_a, str) and isinstance(value_b, str)):
                kind = "text" if isinstance(value_a, str) else "JSON"
                problems.append(f"{where}: {kind} in the README, not for real: {value_b!r}")
            elif mask(value_a) != mask(value_b):
                problems.append(f"{where}: {value_a!r} in the README, {value_b!r} for real")
        else:
            problems += [f"{where}: {p}" for p in json_differences(value_a, value_b)]
    if len(a) != len(b):
        problems.append(f"{len(a)} lines or documents in the README, {len(b)} for real")
    return problems


# -- running it ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_clone(directory: Path) -> None:
    """`directory` as a clone after `make install`: its .venv is this interpreter's."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "strongroom").exists(), f"no strongroom command in {bin_dir}"
    (directory / ".venv").symlink_to(bin_dir.parent, target_is_directory=True)
    # The tour may run the examples (examples/tpp_client.py) as a reader does, from the clone.
    (directory / "examples").symlink_to(ROOT / "examples", target_is_directory=True)


def tour_environment() -> dict[str, str]:
    """A fresh shell's environment, without this interpreter's environment on PATH, and with
    PYTHONPATH naming the strongroom package under test (a checkout's src)."""
    bin_dir = Path(sys.executable).parent.resolve()
    env = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p and Path(p).resolve() != bin_dir)
    env["PYTHONPATH"] = str(Path(strongroom.__file__).resolve().parents[1])
    return env


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@contextlib.contextmanager
def make_run(directory: Path, makefile: str) -> Iterator[str]:
    """`make run` in `directory`, on a free port; yields the base URL once it answers."""
    port = _free_port()
    *before, serve = recipe_commands(makefile, "run", port)
    words = [w for w in shlex.split(serve) if not re.match(r"[A-Z_]+=", w)]  # env assignments
    assert words[1:2] == ["serve"], f"make run serves with {serve!r}"
    env = tour_environment()
    for line in before:
        done = subprocess.run(
            shlex.split(line), cwd=directory, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{line}: exit {done.returncode}\n{done.stderr[-4000:]}"
    env["STRONGROOM_AUDIT_CHECKPOINT_INTERVAL_S"] = str(CHECKPOINT_INTERVAL_S)
    log_path = directory.parent / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", serve],  # as make runs it: the shell sets its variables
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S_MAX
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert proc.poll() is None, (
                    f"serve exited {proc.returncode}:\n{_log_tail(log_path)}"
                )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{base_url}/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, f"serve did not start:\n{_log_tail(log_path)}"
                time.sleep(0.1)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Run:
    outputs: list[list[str]]  # of the steps that ran, stdout and stderr together
    failed: int | None  # the step that failed, if one did
    exit_code: int


def run_tour(steps: Sequence[Step], directory: Path, base_url: str, makefile: str) -> Run:
    """Every step in order in one bash, from `directory`; each step's output in its own file."""
    outputs = directory.parent / "outputs"
    outputs.mkdir()
    script = ["set -euo pipefail"]
    for index, step in enumerate(steps):
        out = shlex.quote(str(outputs / f"{index}.out"))
        script.append(f"echo {index} > {shlex.quote(str(outputs / 'step'))}")
        script.append(f"{{\n{shell_command(step, base_url, makefile)}\n}} > {out} 2>&1")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=directory,
        env=tour_environment(),
        capture_output=True,
        text=True,
        timeout=TOUR_S_MAX,
        check=False,
    )
    ran = [outputs / f"{i}.out" for i in range(len(steps)) if (outputs / f"{i}.out").exists()]
    # The server's own addresses (the issuer is http://localhost:PORT under `make run`) as the
    # README names them.
    port = base_url.rsplit(":", 1)[1]
    readme_port = BASE_URL.rsplit(":", 1)[1]
    texts = [
        path.read_text(errors="replace")
        .replace(base_url, BASE_URL)
        .replace(f"http://localhost:{port}", f"http://localhost:{readme_port}")
        .splitlines()
        for path in ran
    ]
    failed = None
    if done.returncode != 0:
        step_file = outputs / "step"
        failed = int(step_file.read_text()) if step_file.exists() else 0
    return Run(texts, failed, done.returncode)


# -- the test --------------------------------------------------------------------------------


@pytest.mark.slow  # every `strongroom` command starts a fresh interpreter: about 1.5 s of CPU
@pytest.mark.timeout(TEST_S_MAX)
def test_the_readme_tour_runs_as_shown(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        skip_or_fail("curl is not installed, and the README's tour calls it", "CI")
    steps = tour_steps(README.read_text(encoding="utf-8"))
    makefile = MAKEFILE.read_text(encoding="utf-8")
    assert any(BASE_URL in step.command for step in steps), f"the tour never names {BASE_URL}"
    directory = tmp_path / "clone"
    directory.mkdir()
    fresh_clone(directory)
    with make_run(directory, makefile) as base_url:
        run = run_tour(steps, directory, base_url, makefile)
    if run.failed is not None:
        step = steps[run.failed]
        output = "\n".join(run.outputs[run.failed]) if run.failed < len(run.outputs) else ""
        pytest.fail(
            f"README.md:{step.line}: exit {run.exit_code} from\n  $ {step.command}\n{output}"
        )
    problems = []
    for step, real in zip(steps, run.outputs, strict=True):
        differences = output_differences(step.shown, real)  # none shown: none printed
        if differences:
            listed = "\n".join(f"    {d}" for d in differences)
            problems.append(f"README.md:{step.line}: $ {step.command}\n{listed}")
    assert not problems, "the README's tour shows another output:\n" + "\n".join(problems)


# -- the comparison itself -------------------------------------------------------------------


def test_a_renamed_member_a_changed_value_or_a_changed_text_line_is_a_difference() -> None:
    shown = ['{"id":"acc_01m8hztkkzbyv3zbf7vy406ppr","object":"account","balances":{"posted":0}}']
    same = ['{"id":"acc_01m94vrnhz900a85qmn5hng9h2","object":"account","balances":{"posted":7}}']
    assert output_differences(shown, same) == []
    renamed = ['{"id":"acc_01m94vrnhz900a85qmn5hng9h2","object":"account","totals":{"posted":7}}']
    assert output_differences(shown, renamed)
    other_value = [
        '{"id":"acc_01m94vrnhz900a85qmn5hng9h2","object":"acct","balances":{"posted":7}}'
    ]
    assert output_differences(shown, other_value)
    as_string = [
        '{"id":"acc_01m94vrnhz900a85qmn5hng9h2","object":"account","balances":{"posted":"7"}}'
    ]
    assert output_differences(shown, as_string)
    assert output_differences(["refused: insufficient_funds", "exit 1"], ["exit 2"])
    assert output_differences(["exit 1"], ["exit 2"])
    # what varies from run to run: ids, times, hashes, dates
    assert not output_differences(
        ["date: Sat, 28 Nov 2026 21:08:52 GMT", "  v1 2026-11-28T21:08:53.004382Z leaf 4"],
        ["date: Sun, 06 Dec 2026 05:03:28 GMT", "v1   2026-12-06T05:03:29.422859Z  leaf 4"],
    )
    key = "strongroom.localhost/audit+{}"
    assert not output_differences(
        [key.format("9a73550c+AecSDc9ML8gsnZGZgtzcQgzopBB+Zb6UF/Kkvty3YuxM")],
        [key.format("3cc6f249+AeBcKqjqw7jfiRc5Ere1L/JRZh0qn4tqBj+N/e2WLw9G")],
    )


def test_a_pretty_printed_document_is_one_document() -> None:
    shown = ["{", '  "version": 1,', '  "balances": {"posted": 10}', "}", "verify: ok"]
    assert segments(shown) == [(0, {"version": 1, "balances": {"posted": 10}}), (4, "verify: ok")]
    assert (
        output_differences(shown, ['{"version": 2, "balances": {"posted": 3}}', "verify: ok"]) == []
    )
    assert output_differences(shown, ['{"version": 2}', "verify: ok"])


def test_a_tour_block_that_would_not_run_is_refused() -> None:
    readme = f"{TOUR_HEADING}\n\n```sh\n$ curl {BASE_URL}/healthz\n```\n"
    with pytest.raises(AssertionError, match="every code block of the tour"):
        tour_steps(readme)
    readme = f"{TOUR_HEADING}\n\n{TOUR_BLOCK}\n$ curl -s \\\n  {BASE_URL}/healthz\n```\n"
    with pytest.raises(AssertionError, match="continues on the next line"):
        tour_steps(readme)


def test_every_command_and_output_of_the_tour_is_read() -> None:
    steps = tour_steps(README.read_text(encoding="utf-8"))
    commands = [step.command for step in steps]
    assert commands[:2] == ["source .venv/bin/activate", "export SR_KEY=$(cat .strongroom/dev-key)"]
    assert "make demo" in commands
    assert any(c.startswith("strongroom audit verify ") for c in commands)
    assert any(c.startswith("strongroom ledger verify") for c in commands)
    shown = sum(1 for step in steps if step.shown)
    assert shown >= len(steps) // 2, f"only {shown} of {len(steps)} commands show an output"


# -- python -m tests.e2e.test_readme_tour: the real output of every command -----------------


def main() -> None:
    import tempfile

    steps = tour_steps(README.read_text(encoding="utf-8"))
    makefile = MAKEFILE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary) / "clone"
        directory.mkdir()
        fresh_clone(directory)
        with make_run(directory, makefile) as base_url:
            run = run_tour(steps, directory, base_url, makefile)
    for step, real in zip(steps, run.outputs, strict=False):
        print(f"{PROMPT}{step.command}")
        for line in real:
            print(line)
        print()
    if run.failed is not None:
        print(f"exit {run.exit_code} at README.md:{steps[run.failed].line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
