"""Run a coverage-guided fuzz campaign against one target and print its figures.

``python -m fuzz.run --target pcap --seconds 300`` runs atheris (libFuzzer) for that long,
starting from the committed seeds (``fuzz/corpus/pcap``) and growing a working corpus in
``bench/out/fuzz/pcap/corpus``. libFuzzer stops at the first crash, so the campaign
restarts the worker until the time is used up, keeping each crashing input (deduplicated
by exception type and raising line) in ``bench/out/fuzz/<target>/crashes``. At the end
the seeds and the grown corpus are replayed under coverage.py, and the campaign prints
executions, exec/s, line/branch coverage of the target's modules (seeds alone vs after the
campaign) and the crashes. A JSON copy goes to ``summary.json`` next to them.

The pcap and flows targets run numba kernels; the campaign sets ``NUMBA_DISABLE_JIT=1``
so the kernels run as Python that atheris can instrument and coverage can measure (and
where an out-of-bounds index is an ``IndexError`` rather than a silent wild read).
``--jit`` keeps them compiled instead (production speed, no kernel feedback).

Other entry points (used by the campaign itself): ``--worker`` (one atheris run) and
``--replay DIR...`` (run inputs through the target, optionally under coverage).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = Path(__file__).resolve().parent / "corpus"
OUT = ROOT / "bench" / "out" / "fuzz"


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def worker(target_name: str, seconds: int, corpus: Path, crashes: Path) -> None:
    """One libFuzzer run (does not return: libFuzzer exits the process)."""
    import atheris  # type: ignore[import-untyped]

    from fuzz.targets import TARGETS, cleanup, dictionary, dictionary_file, python_kernels

    target = TARGETS[target_name]
    modules = [_module_name(m) for m in (*target.modules, *target.instrument)]
    with atheris.instrument_imports(include=modules):
        for name in modules:
            __import__(name)
    if target.needs_jit_off and os.environ.get("NUMBA_DISABLE_JIT") == "1":
        python_kernels()
    run = target.run
    known_file = crashes / "known.txt"
    known = set(known_file.read_text().splitlines()) if known_file.exists() else set()

    def one(data: bytes) -> None:
        try:
            run(data)
        except Exception as exc:  # every escape is a finding; known ones are skipped
            sig = signature(exc)
            if sig in known:
                return
            sys.stderr.write(f"\nFUZZ-SIGNATURE: {sig}\n")
            traceback.print_exc()
            sys.stderr.flush()
            raise

    import atexit

    atexit.register(cleanup)
    args = [
        sys.argv[0],
        str(corpus),
        str(SEEDS / target_name),
        f"-max_total_time={max(1, seconds)}",
        f"-max_len={target.max_len}",
        "-print_final_stats=1",
        "-timeout=20",
        "-rss_limit_mb=3072",
        f"-artifact_prefix={crashes}/",
    ]
    tokens = dictionary(target_name)
    if tokens:
        args.append(f"-dict={dictionary_file(tokens, corpus.parent / 'tokens.dict')}")
    atheris.Setup(args, one)
    atheris.Fuzz()


_EXEC_RE = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_STATUS_RE = re.compile(r"^#(\d+)\s", re.M)
_ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")


_SIG_RE = re.compile(r"^FUZZ-SIGNATURE: (.*)$", re.M)
_REPR_RE = re.compile(r"b?'(?:[^'\\]|\\.)*'" + "|" + r'b?"(?:[^"\\]|\\.)*"')


def signature(exc: BaseException) -> str:
    """How crashes are deduplicated: a broken property by its message (numbers blanked), any
    other exception by its type and the innermost minerscope frame that raised it."""
    from fuzz.targets import PropertyFailure

    if isinstance(exc, PropertyFailure):
        text = _REPR_RE.sub("<input>", str(exc))
        return "PropertyFailure: " + re.sub(r"\d+", "N", text)[:100]
    frames = traceback.extract_tb(exc.__traceback__)
    where = next(
        (f for f in reversed(frames) if "/minerscope/" in f.filename), frames[-1] if frames else None
    )
    place = f"{Path(where.filename).name}:{where.lineno} ({where.name})" if where else "?"
    return f"{type(exc).__name__} at {place}"


def _coverage(
    target_name: str, dirs: list[Path], env: dict[str, str], measure: bool = True
) -> dict[str, object]:
    """Replay ``dirs`` through the target (under coverage.py) in a fresh process; return its figures."""
    cmd = [sys.executable, "-m", "fuzz.run", "--target", target_name, "--replay", *map(str, dirs)]
    if measure:
        cmd.append("--coverage")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    try:
        return json.loads(line)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return {"error": (proc.stderr or proc.stdout)[-500:]}


def replay(target_name: str, dirs: list[Path], measure: bool) -> None:
    """Run every file of ``dirs`` through the target; print JSON figures (with coverage)."""
    cov = None
    from fuzz.targets import TARGETS

    target = TARGETS[target_name]
    if measure:
        import coverage

        cov = coverage.Coverage(branch=True, include=[str(ROOT / m) for m in target.modules], data_file=None)
        cov.start()
    from fuzz.targets import PropertyFailure, cleanup, python_kernels

    if target.needs_jit_off and os.environ.get("NUMBA_DISABLE_JIT") == "1":
        python_kernels()

    files = sorted(f for d in dirs if d.is_dir() for f in d.iterdir() if f.is_file())
    failures = []
    for f in files:
        try:
            target.run(f.read_bytes())
        except (Exception, PropertyFailure) as exc:  # report, keep replaying
            failures.append(f"{f.name}: {type(exc).__name__}: {str(exc)[:160]}")
    cleanup()
    out: dict[str, object] = {"inputs": len(files), "failures": failures}
    if cov is not None:
        cov.stop()
        lines_hit = lines_all = br_hit = br_all = 0
        per_module = {}
        for mod in target.modules:
            analysis = cov._analyze(str(ROOT / mod))  # noqa: SLF001 - the public API only prints reports
            nums = analysis.numbers
            lines_all += nums.n_statements
            lines_hit += nums.n_statements - nums.n_missing
            br_all += nums.n_branches
            br_hit += nums.n_branches - nums.n_missing_branches
            per_module[mod] = round(nums.pc_covered, 1)
        out.update(
            lines=[lines_hit, lines_all],
            branches=[br_hit, br_all],
            per_module=per_module,
        )
    print(json.dumps(out))


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def campaign(target_name: str, seconds: int, out_dir: Path, jit: bool) -> dict[str, object]:
    """Fuzz for ``seconds``, restarting after each crash; then measure coverage."""
    from fuzz.targets import TARGETS

    target = TARGETS[target_name]
    corpus, crashes = out_dir / "corpus", out_dir / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    if target.needs_jit_off and not jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    seeds_before = len(list((SEEDS / target_name).iterdir()))
    executions = 0
    found: dict[str, str] = {}
    start = time.monotonic()
    fuzz_time = 0.0
    cpu_before = _children_cpu()
    runs = 0
    while (left := seconds - (time.monotonic() - start)) >= 2:
        runs += 1
        cmd = [
            sys.executable,
            "-m",
            "fuzz.run",
            "--target",
            target_name,
            "--worker",
            "--seconds",
            str(int(left)),
        ]
        cmd += ["--out", str(out_dir)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        fuzz_time += time.monotonic() - t0
        err = proc.stderr
        stats = _EXEC_RE.findall(err)
        if stats:
            executions += int(stats[-1])
        elif statuses := _STATUS_RE.findall(err):
            executions += int(statuses[-1])
        artifact = _ARTIFACT_RE.search(err)
        sig_match = _SIG_RE.search(err)
        if proc.returncode != 0 or artifact:
            if sig_match is None or artifact is None:  # not a target exception: a real abort
                print(err[-3000:], file=sys.stderr)
                break
            sig, path = sig_match.group(1), artifact.group(1)
            found[sig] = path
            with (crashes / "known.txt").open("a") as known:
                known.write(sig + "\n")
            (crashes / f"{Path(path).name}.txt").write_text(err[-6000:])
            print(f"  crash: {sig}\n         input {path}", flush=True)
    cpu = _children_cpu() - cpu_before  # the machine may be shared: CPU time is the fair measure
    corpus_units = len(list(corpus.iterdir()))
    cov_env = dict(env, NUMBA_DISABLE_JIT="1") if target.needs_jit_off else env
    cov_seeds = _coverage(target_name, [SEEDS / target_name], cov_env)
    cov_after = _coverage(target_name, [SEEDS / target_name, corpus], cov_env)
    if target.needs_jit_off and not jit:  # the grown corpus through the compiled kernels too
        jit_env = {k: v for k, v in env.items() if k != "NUMBA_DISABLE_JIT"}
        cov_after["jit_failures"] = _coverage(target_name, [corpus], jit_env, measure=False).get("failures")
    summary: dict[str, object] = {
        "target": target_name,
        "seconds": round(fuzz_time, 1),
        "worker_runs": runs,
        "executions": executions,
        "exec_per_s": round(executions / fuzz_time, 1) if fuzz_time else 0.0,
        "cpu_seconds": round(cpu, 1),
        "exec_per_cpu_s": round(executions / cpu, 1) if cpu else 0.0,
        "seeds": seeds_before,
        "corpus_units": corpus_units,
        "coverage_seeds": cov_seeds,
        "coverage_after": cov_after,
        "crashes": found,
        "jit": jit or not target.needs_jit_off,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _pct(pair: object) -> str:
    if not isinstance(pair, list) or len(pair) != 2 or not pair[1]:
        return "n/a"
    return f"{100.0 * pair[0] / pair[1]:.1f}% ({pair[0]}/{pair[1]})"


def print_summary(s: dict[str, object]) -> None:
    """The campaign's figures, one fact a line."""
    from fuzz.targets import TARGETS

    before, after = s["coverage_seeds"], s["coverage_after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    crashes = s["crashes"]
    assert isinstance(crashes, dict)
    print(f"target      {s['target']}  ({', '.join(TARGETS[str(s['target'])].modules)})")
    print(
        f"executions  {s['executions']} in {s['seconds']} s = {s['exec_per_s']} exec/s ({s['worker_runs']} worker runs)"
    )
    print(f"cpu         {s['cpu_seconds']} CPU-s = {s['exec_per_cpu_s']} exec per CPU-second")
    print(f"corpus      {s['seeds']} seeds -> {s['corpus_units']} new units")
    print(f"lines       {_pct(before.get('lines'))} from seeds -> {_pct(after.get('lines'))} after")
    print(f"branches    {_pct(before.get('branches'))} from seeds -> {_pct(after.get('branches'))} after")
    for key, what in (("failures", "replay     "), ("jit_failures", "jit replay ")):
        failures = after.get(key)
        if isinstance(failures, list) and failures:
            print(f"{what} {len(failures)} corpus inputs fail now: {failures[:3]}")
    print(f"crashes     {len(crashes)} distinct")
    for sig, path in crashes.items():
        print(f"  - {sig}\n    {path}")


def main() -> None:
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description="Coverage-guided fuzzing of minerscope's parsers.")
    parser.add_argument("--target", required=True, choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="campaign length (default 60)")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default bench/out/fuzz/TARGET)")
    parser.add_argument("--jit", action="store_true", help="keep numba kernels compiled (no kernel coverage)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", nargs="+", type=Path, help="run these folders' inputs through the target")
    parser.add_argument("--coverage", action="store_true", help="with --replay: measure coverage")
    args, _rest = parser.parse_known_args()
    out_dir = args.out or OUT / args.target
    if args.worker:
        worker(args.target, args.seconds, out_dir / "corpus", out_dir / "crashes")
        return
    if args.replay:
        replay(args.target, args.replay, args.coverage)
        return
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[fuzz]' (or run the hypothesis smoke test)")
    print(f"fuzzing {args.target} for {args.seconds} s -> {out_dir}", flush=True)
    try:
        print_summary(campaign(args.target, args.seconds, out_dir, args.jit))
    except KeyboardInterrupt:
        traceback.print_exc(limit=0)
        sys.exit(130)


if __name__ == "__main__":
    main()
