#!/usr/bin/env python3
"""The README's front door, run as a newcomer runs it.

    python3 tests/front_door.py                 # the first command as written (port 3000),
                                                # then the curl walk-through against it
    python3 tests/front_door.py --exe target/debug/local-api --port 0
                                                # the walk-through against that binary
                                                # on a free port (tests/readme.rs)
    python3 tests/front_door.py command 2       # print the README's second command
    python3 tests/front_door.py block docs/DEPLOY.md lambda-watch   # print a marked block

It takes the commands out of the README itself: the two lines of the "The two commands"
block and the walk-through block, found by the `<!-- ci: NAME -->` line before each (every
sh block of README.md and docs/ carries such a line, or `<!-- not in ci: why -->`). The first command runs from the repository
root, exactly as written, in the background; once it prints its listening line, the
walk-through runs under `bash -e -o pipefail` and every answer it prints is checked: each is
a JSON object, the only error is the `invalid_grant` its line announces, and the sign-in its
line marks `# same sub` answers the `sub` of the sign-up. Then the server is stopped.
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
WRITTEN_ORIGIN = "http://127.0.0.1:3000"
LISTENING = re.compile(r"local-api listening on (http://127\.0\.0\.1:\d+)")


def fail(sentence):
    print(f"front door: FAILED: {sentence}", file=sys.stderr, flush=True)
    sys.exit(1)


def block(document, name):
    """The fenced sh block that the `<!-- ci: NAME -->` line right before it names."""
    path = os.path.join(ROOT, document)
    text = open(path, encoding="utf-8").read()
    match = re.search(rf"^<!-- ci: {re.escape(name)} -->\n```sh\n(.*?)^```", text, re.S | re.M)
    if not match:
        fail(f"{document} has no ```sh block marked <!-- ci: {name} -->")
    return match.group(1)


def two_commands():
    lines = [line for line in block("README.md", "two-commands").splitlines() if line.strip()]
    if len(lines) != 2:
        fail(f'"The two commands" holds {len(lines)} commands, not 2: {lines}')
    return lines


def printing_commands(script):
    """The walk-through's commands that print an answer: curl calls whose output is neither
    captured nor redirected, each with the comment that ends its line."""
    logical, current = [], ""
    for line in script.splitlines():
        current += line.rstrip("\\") + (" " if line.endswith("\\") else "")
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [line for line in logical if line.startswith("curl ") and " > " not in line]


def answers_of(output):
    decoder, answers, rest = json.JSONDecoder(), [], output.strip()
    while rest:
        try:
            answer, end = decoder.raw_decode(rest)
        except json.JSONDecodeError:
            fail(f"the walk-through printed something that is not JSON: {rest[:200]!r}")
        answers.append(answer)
        rest = rest[end:].lstrip()
    return answers


def run_walkthrough(origin):
    script = block("README.md", "walk-through")
    if origin != WRITTEN_ORIGIN:
        script = script.replace(WRITTEN_ORIGIN, origin)
    commands = printing_commands(script)
    print("front door: running the README's curl walk-through", flush=True)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    print(done.stdout, flush=True)
    if done.returncode != 0 or done.stderr.strip():
        fail(f"the walk-through exited {done.returncode} with: {done.stderr.strip()}")
    answers = answers_of(done.stdout)
    if len(answers) != len(commands):
        fail(f"{len(commands)} commands print an answer but {len(answers)} answers came")
    signup_sub = None
    for command, answer in zip(commands, answers):
        shown = command if len(command) < 100 else command[:97] + "..."
        if not isinstance(answer, dict):
            fail(f"`{shown}` answered {answer!r}, not a JSON object")
        expected_error = "invalid_grant" if command.endswith("# invalid_grant") else None
        if answer.get("error") != expected_error:
            fail(f"`{shown}` answered {answer}, expected error {expected_error}")
        if "/signup" in command and signup_sub is None:
            signup_sub = answer.get("sub")
        if command.endswith("# same sub"):
            if not signup_sub or answer.get("sub") != signup_sub:
                fail(f"`{shown}` answered sub {answer.get('sub')}, the sign-up's was {signup_sub}")
        print(f"front door: ok  {shown}", flush=True)
    for mark in ("# same sub", "# invalid_grant"):
        if not any(command.endswith(mark) for command in commands):
            fail(f"no command of the walk-through is marked `{mark}`")


def start_server(command, port):
    env = dict(os.environ)
    if port is not None:
        env["PORT"] = str(port)
    print(f"front door: $ {command}", flush=True)
    server = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    found = {}
    seen = threading.Event()

    def echo():
        for line in server.stdout:
            print(f"  | {line.rstrip()}", flush=True)
            match = LISTENING.search(line)
            if match and "origin" not in found:
                found["origin"] = match.group(1)
                seen.set()
        seen.set()

    threading.Thread(target=echo, daemon=True).start()
    # The first run on a fresh clone builds the server.
    seen.wait(timeout=30 * 60)
    if "origin" not in found:
        stop(server)
        fail(f"`{command}` did not print its listening line")
    return server, found["origin"]


def stop(server):
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="PORT for the server (default: unset)")
    parser.add_argument("--exe", help="start this local-api binary instead of the README's "
                                      "first command (which the workspace then need not build)")
    parser.add_argument("what", nargs="*",
                        help="`command N` prints the README's Nth command; "
                             "`block FILE NAME` prints the block marked `ci: NAME`")
    args = parser.parse_args()
    if args.what:
        if args.what[0] == "command" and len(args.what) == 2 and args.what[1] in ("1", "2"):
            print(two_commands()[int(args.what[1]) - 1])
        elif args.what[0] == "block" and len(args.what) == 3:
            print(block(args.what[1], args.what[2]), end="")
        else:
            parser.error("expected `command 1`, `command 2` or `block FILE NAME`")
        return
    first = shlex.quote(args.exe) if args.exe else two_commands()[0]
    server, origin = start_server(first, args.port)
    try:
        started = time.monotonic()
        run_walkthrough(origin)
        if server.poll() is not None:
            fail(f"`{first}` stopped during the walk-through")
        print(f"front door: the walk-through passed in {time.monotonic() - started:.1f} s", flush=True)
    finally:
        stop(server)


if __name__ == "__main__":
    main()
