"""Coverage-guided fuzzing of the same targets with atheris (issue 13).

Every hypothesis target in test_fuzz.py is also an atheris target: hypothesis turns the
fuzzer's bytes into the target's arguments (`fuzz_one_input`, made for fuzzers like
this one), so both fuzzers share one definition of each target and what it accepts.

    .venv/bin/python tests/atheris_fuzz.py --list
    .venv/bin/python tests/atheris_fuzz.py etf_random -atheris_runs=100000
    .venv/bin/python tests/atheris_fuzz.py all -atheris_runs=20000   # each target in turn

A crash prints the failing input's arguments and exits non-zero. atheris is installed by
`make venv` where it installs (it ships wheels for Linux and macOS on x86-64); elsewhere
these runs are skipped and the hypothesis runs still cover every target.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def targets(module) -> dict:
    prefix = "test_fuzz_"
    return {name[len(prefix):]: fn for name, fn in vars(module).items()
            if name.startswith(prefix) and hasattr(fn, "hypothesis")}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    name, rest = argv[1], argv[2:]
    if name in ("--list", "all"):
        import test_fuzz    # uninstrumented: only the names are needed
        names = sorted(targets(test_fuzz))
        if name == "--list":
            print("\n".join(names))
            return 0
        failed = [n for n in names
                  if subprocess.call([sys.executable, __file__, n, *rest]) != 0]
        print(f"{len(names) - len(failed)}/{len(names)} targets ran clean"
              + (f"; crashed: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    import atheris
    with atheris.instrument_imports(include=["clusterkit"]):
        import test_fuzz
    found = targets(test_fuzz)
    if name not in found:
        print(f"no fuzz target {name!r}; --list shows them", file=sys.stderr)
        return 2
    atheris.Setup([argv[0], *rest], found[name].hypothesis.fuzz_one_input)
    atheris.Fuzz()      # exits the process when its runs are done
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
