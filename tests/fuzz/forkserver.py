"""Runs ``archsearch`` commands in forked children with a memory and a time limit.

Started once per test session (``python -m tests.fuzz.forkserver``), it imports archsearch
(and torch) once, then for each request read from stdin (one JSON object per line: ``args``,
``env``, ``cwd``, ``stdin``, ``timeout``, ``memory``) forks a child that limits its address
space to what it has plus ``memory`` bytes (``RLIMIT_AS``), arms an alarm of ``timeout``
seconds, and runs the command as the console script does (``archsearch.cli.main``). The
parent answers one JSON line: the exit code (or the signal that ended the child: SIGALRM for a
hang, SIGKILL/SIGSEGV for memory), stdout, stderr, seconds and the child's peak resident
memory above the server's.

Forking keeps each command's cost to what the command does (no interpreter start-up, no
imports: about 10 ms instead of 1 s), so that hypothesis can try hundreds of inputs.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(request: dict, out_path: str, err_path: str) -> None:  # type: ignore[type-arg]
    os.environ.update(request.get("env", {}))
    os.chdir(request.get("cwd", os.getcwd()))
    out = os.open(out_path, os.O_WRONLY)
    err = os.open(err_path, os.O_WRONLY)
    inp = os.open(os.devnull, os.O_RDONLY)
    os.dup2(inp, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    limit = _vm_size() + int(request.get("memory", 2 * 1024**3))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(request.get("timeout", 60)))
    sys.argv = ["archsearch", *request["args"]]
    code = 0
    try:
        from archsearch.cli import main

        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # a traceback the CLI let through: print it as Python would
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    import torch  # noqa: F401

    import archsearch.cli  # noqa: F401  (imported once, before forking)

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for line in sys.stdin:
        request = json.loads(line)
        with (
            tempfile.NamedTemporaryFile(delete=False) as out,
            tempfile.NamedTemporaryFile(delete=False) as err,
        ):
            pass
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                _child(request, out.name, err.name)
            except BaseException as e:  # the harness itself failed: say how, then exit 99
                with open(err.name, "a") as f:
                    f.write(f"forkserver child: {type(e).__name__}: {e}\n")
            finally:
                os._exit(99)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.monotonic() - start
        with open(out.name, errors="replace") as f:
            stdout = f.read()
        with open(err.name, errors="replace") as f:
            stderr = f.read()
        os.unlink(out.name)
        os.unlink(err.name)
        answer = {
            "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "stdout": stdout[-20000:],
            "stderr": stderr[-20000:],
            "seconds": seconds,
            "peak_rss_above_server": max(0, usage.ru_maxrss * 1024 - base_rss),
        }
        sys.__stdout__.write(json.dumps(answer) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    serve()
