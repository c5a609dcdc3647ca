"""Mutation testing of the core: does the test suite notice a one-token change to the code?

For each source file it finds mutation sites with ``ast`` and patches the source text, one mutant at a
time, in a private copy of the repository; then it runs that package's fast tests there (``-x -q``,
with a timeout, ``PYTHONPATH=<copy>/src``). A mutant is *killed* when the tests fail (or time out),
*survives* when they pass. Operators:

- arithmetic ``+``↔``-``, ``*``↔``/``, ``//``→``/``, augmented ``+=``↔``-=``, ``*=``↔``/=``
- comparisons ``<``↔``<=``, ``>``↔``>=``, ``==``↔``!=``, ``is``↔``is not``, ``in``↔``not in``
- boolean ``and``↔``or``, ``not x``→``x``
- constants ``0``↔``1``, other integers n→n+1, small floats (|x| < 0.01) ×1000, other floats ×2,
  ``True``↔``False``
- guards: ``max(x, c)`` / ``min(x, c)`` with a constant c → ``x``; ``.clamp(min=c)`` → removed

Not mutated: docstrings and other strings, f-strings and string concatenation, what a ``raise``
raises, type annotations, decorators, lines with ``# no mutate``.

    python benchmarks/mutate.py                        # every package below
    python benchmarks/mutate.py --package losses --max-per-file 40 --jobs 2
    python benchmarks/mutate.py --file src/entrostat/train/update.py --list   # only list the sites
    python benchmarks/mutate.py --package losses --retest losses.json         # the survivors of an earlier run

The tests of the unmutated copy run first: tests that fail there are deselected (and named), and
tests slower than ``--slow`` seconds there are deselected too (named; they would make every
surviving mutant slow). Exit code 0; the report (``--json`` for a machine-readable one) gives
killed/total per file and every survivor as ``file:line: original -> mutant``.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures as futures
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> (source files, the tests that guard them)
PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "losses": (["src/entrostat/losses/*.py"], ["tests/losses"]),
    "control": (["src/entrostat/control/*.py"], ["tests/control"]),
    "train": ([f"src/entrostat/train/{m}.py" for m in ("update", "rollouts", "stats", "trainer", "control")],
              ["tests/train"]),
}

BINOP_SWAP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
              ast.FloorDiv: ("//", "/")}
CMP_SWAP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
            ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
            ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
BOOL_SWAP = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


@dataclass(frozen=True)
class Mutant:
    file: str  # relative to the repository root
    line: int  # 1-based
    start: int  # byte offsets in the file
    end: int
    original: str
    replacement: str
    kind: str

    def label(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.original!r} -> {self.replacement!r}"


# ------------------------------------------------------------------------------------------ sites
class _Sites(ast.NodeVisitor):
    """Collects mutants of one file; offsets are UTF-8 byte offsets (as ``ast`` gives columns)."""

    def __init__(self, rel: str, source: bytes):
        self.rel, self.src = rel, source
        self.line_starts = [0]
        for line in source.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.skip_lines = {i + 1 for i, line in enumerate(source.splitlines()) if b"# no mutate" in line}
        self.out: list[Mutant] = []

    def off(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def start(self, node) -> int:
        return self.off(node.lineno, node.col_offset)

    def end(self, node) -> int:
        return self.off(node.end_lineno, node.end_col_offset)

    def add(self, line: int, start: int, end: int, replacement: str, kind: str) -> None:
        if line in self.skip_lines:
            return
        original = self.src[start:end].decode()
        self.out.append(Mutant(self.rel, line, start, end, original, replacement, kind))

    def find_token(self, lo: int, hi: int, token: str) -> int | None:
        """Byte offset of operator ``token`` between two operands (skipping brackets, spaces, comments)."""
        text = self.src[lo:hi].decode()
        text = re.sub(r"#[^\n]*", lambda m: " " * len(m.group().encode()), text)
        if token.isalpha() or " " in token:
            pat = r"(?<![\w.])" + r"\s+".join(map(re.escape, token.split())) + r"(?!\w)"
        else:
            others = {"*": r"(?<!\*)\*(?!\*)", "/": r"(?<!/)/(?!/)", "<": r"<(?!=)", ">": r">(?!=)"}
            pat = others.get(token, re.escape(token))
        matches = list(re.finditer(pat, text))
        if len(matches) != 1:
            return None
        return lo + len(text[: matches[0].start()].encode())

    def op_between(self, left, right, token: str, new: str, kind: str, line: int) -> None:
        pos = self.find_token(self.end(left), self.start(right), token)
        if pos is not None:
            width = len(re.match(r"\s*".join(map(re.escape, token.split())), self.src[pos:].decode()).group().encode())
            self.add(line, pos, pos + width, new, kind)

    # -- skip what does not run or only formats text
    def visit_JoinedStr(self, node):
        return

    def visit_Raise(self, node):  # what is raised is a message; the condition that raises is mutated
        return

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node):
        return

    def visit_ClassDef(self, node):  # decorators (dataclass(frozen=True), registrations) are declarations
        for stmt in node.body:
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                self.visit(stmt)

    def visit_FunctionDef(self, node):
        self.visit(node.args)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        for stmt in body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arguments(self, node):
        for d in [*node.defaults, *[d for d in node.kw_defaults if d is not None]]:
            self.visit(d)

    # -- operators
    def visit_BinOp(self, node):
        swap = BINOP_SWAP.get(type(node.op))
        text = [isinstance(x, ast.JoinedStr) or (isinstance(x, ast.Constant) and isinstance(x.value, str))
                for x in (node.left, node.right)]
        if swap and not any(text):  # not a message being put together
            self.op_between(node.left, node.right, swap[0], swap[1], "binop", node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        swap = {ast.Add: ("+=", "-="), ast.Sub: ("-=", "+="), ast.Mult: ("*=", "/="), ast.Div: ("/=", "*=")}.get(
            type(node.op))
        if swap:
            pos = self.find_token(self.end(node.target), self.start(node.value), swap[0])
            if pos is not None:
                self.add(node.lineno, pos, pos + 2, swap[1], "augassign")
        self.generic_visit(node)

    def visit_Compare(self, node):
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            swap = CMP_SWAP.get(type(op))
            if swap:
                self.op_between(left, right, swap[0], swap[1], "compare", node.lineno)
            left = right
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        old, new = BOOL_SWAP[type(node.op)]
        for a, b in zip(node.values, node.values[1:]):
            self.op_between(a, b, old, new, "boolop", node.lineno)
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            self.add(node.lineno, self.start(node), self.start(node) + 3, "", "not")  # the keyword only
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return  # -1 as a whole: its constant is mutated through the unary minus's operand below
        self.generic_visit(node)

    # -- constants
    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool):
            self.add(node.lineno, self.start(node), self.end(node), str(not v), "constant")
        elif isinstance(v, int):
            self.add(node.lineno, self.start(node), self.end(node), {0: "1", 1: "0"}.get(v, str(v + 1)), "constant")
        elif isinstance(v, float):
            if v == 0.0:
                new = "1.0"
            elif v == 1.0:
                new = "0.0"
            elif abs(v) < 1e-2:
                new = repr(v * 1e3)
            else:
                new = repr(v * 2)
            self.add(node.lineno, self.start(node), self.end(node), new, "constant")

    # -- guards
    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("max", "min") and len(node.args) == 2 and not node.keywords:
            consts = [isinstance(a, ast.Constant) or (isinstance(a, ast.UnaryOp) and isinstance(a.operand, ast.Constant))
                      for a in node.args]
            if consts.count(True) == 1:
                other = node.args[consts.index(False)]
                self.add(node.lineno, self.start(node), self.end(node),
                         "(" + self.src[self.start(other):self.end(other)].decode() + ")", "guard")
        if isinstance(f, ast.Attribute) and f.attr in ("clamp", "clamp_min", "clamp_max"):
            dot = self.src.rfind(b".", 0, self.end(f))  # `(a - b).clamp(...)`: the value ends before its ")"
            self.add(node.lineno, dot, self.end(node), "", "guard")
        self.generic_visit(node)

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring / bare string
        self.generic_visit(node)


def mutants_of(rel: str, base: Path = ROOT) -> list[Mutant]:
    src = (base / rel).read_bytes()
    v = _Sites(rel, src)
    v.visit(ast.parse(src))
    seen, out = set(), []
    for m in v.out:  # one mutant per (span, replacement)
        key = (m.start, m.end, m.replacement)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return sorted(out, key=lambda m: (m.start, m.end))


def apply(src: bytes, m: Mutant) -> bytes:
    return src[: m.start] + m.replacement.encode() + src[m.end:]


# ------------------------------------------------------------------------------------------ running
def copy_repo(dst: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "runs", "*.egg-info")
    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


def pytest_cmd(tests: list[str], extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra, *tests]


def env_for(copy: Path, cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["ENTROSTAT_CACHE"] = cache  # one lab base-model cache for every run
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant's .pyc never outlives it
    return env


def baseline(copy: Path, tests: list[str], cache: str, slow: float, timeout: float) -> tuple[list[str], dict]:
    """Run the tests on the unmutated copy: (deselect args, info about failing and slow tests)."""
    report = copy / "baseline-report.txt"
    cmd = pytest_cmd(tests, ["-rfE", "--durations=0", "--durations-min", str(slow)])
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=copy, env=env_for(copy, cache), capture_output=True, text=True, timeout=timeout * 4)
    report.write_text(res.stdout + res.stderr)
    failing = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", res.stdout, flags=re.M)))
    failing = [f.split(" - ")[0] for f in failing]
    slow_tests = sorted({m.group(2) for m in re.finditer(r"^([\d.]+)s (?:call|setup|teardown)\s+(\S+)", res.stdout,
                                                          flags=re.M) if float(m.group(1)) >= slow})
    deselect = [a for t in [*failing, *slow_tests] for a in ("--deselect", t)]
    return deselect, {"failing": failing, "slow": slow_tests, "seconds": round(time.perf_counter() - t0, 1)}


def run_mutant(m: Mutant, copy: Path, tests: list[str], deselect: list[str], cache: str, timeout: float) -> str:
    path = copy / m.file
    original = path.read_bytes()
    path.write_bytes(apply(original, m))
    try:
        cmd = pytest_cmd(tests, ["-x", "--timeout", str(int(timeout)), *deselect])
        try:
            res = subprocess.run(cmd, cwd=copy, env=env_for(copy, cache), capture_output=True, text=True,
                                 timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            return "killed (timeout)"
        if res.returncode == 0:
            return "survived"
        if res.returncode == 5:  # no tests ran
            return "survived (no tests)"
        return "killed"
    finally:
        path.write_bytes(original)


def make_plan(args, base: Path) -> list[tuple[str, list[Mutant], list[str]]]:
    """(package, mutants, tests) for the selected packages / files, read from the tree at ``base``."""
    plan = []
    rng = random.Random(args.seed)
    for pkg in args.package or list(PACKAGES):
        globs, tests = PACKAGES[pkg]
        files = sorted({str(p.relative_to(base)) for g in globs for p in base.glob(g)})
        if args.file:
            files = [f for f in files if f in args.file]
        muts = []
        for f in files:
            ms = mutants_of(f, base)
            if args.max_per_file and len(ms) > args.max_per_file:
                ms = sorted(rng.sample(ms, args.max_per_file), key=lambda m: m.start)
            muts += ms
        if getattr(args, "retest", None):
            earlier = json.loads(Path(args.retest).read_text())
            wanted = {s["label"] for r in earlier.values() for d in r["files"].values() for s in d["survivors"]}
            muts = [m for m in muts if m.label() in wanted]
        if muts:
            plan.append((pkg, muts, args.tests or tests))
    return plan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", action="append", choices=sorted(PACKAGES), help="packages (default: all)")
    ap.add_argument("--file", action="append", help="only these source files (repository-relative)")
    ap.add_argument("--tests", action="append", help="tests to run instead of the package's")
    ap.add_argument("--max-per-file", type=int, default=0, help="at most this many mutants per file (0: all), "
                                                                 "drawn at random with --seed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (one copy each)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant's test run")
    ap.add_argument("--slow", type=float, default=3.0, help="deselect tests slower than this on the unmutated copy")
    ap.add_argument("--retest", type=Path, help="only the survivors recorded in this --json file of an earlier run "
                                                "(matched by file, line and change; the rest count as before)")
    ap.add_argument("--list", action="store_true", help="only list the mutants")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    if args.list:
        plan = make_plan(args, ROOT)
        for pkg, muts, _ in plan:
            for m in muts:
                print(f"[{pkg}] {m.label()}")
        print(sum(len(m) for _, m, _ in plan), "mutants")
        return 0

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="entrostat-mutate-") as tmp:
        tmp = Path(tmp)
        cache = os.environ.get("ENTROSTAT_CACHE") or str(tmp / "cache")
        copies = [copy_repo(tmp / "copy0")]  # the working tree may change meanwhile: the others copy this one
        copies += [Path(shutil.copytree(copies[0], tmp / f"copy{i}")) for i in range(1, max(args.jobs, 1))]
        plan = make_plan(args, copies[0])  # sites from the copy that is tested
        for pkg, muts, tests in plan:
            deselect, info = baseline(copies[0], tests, cache, args.slow, args.timeout)
            print(f"[{pkg}] baseline {info['seconds']} s; deselected failing: {info['failing'] or 'none'}; "
                  f"slow: {info['slow'] or 'none'}", flush=True)
            free = list(copies)
            outcomes: dict[Mutant, str] = {}
            with futures.ThreadPoolExecutor(len(copies)) as pool:
                pending = {}
                queue = list(muts)
                while queue or pending:
                    while queue and free:
                        m, c = queue.pop(0), free.pop()
                        pending[pool.submit(run_mutant, m, c, tests, deselect, cache, args.timeout)] = (m, c)
                    done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                    for fut in done:
                        m, c = pending.pop(fut)
                        free.append(c)
                        outcomes[m] = fut.result()
                        print(f"  {outcomes[m]:<18} {m.label()}", flush=True)
            per_file: dict[str, dict] = {}
            for m in muts:
                d = per_file.setdefault(m.file, {"killed": 0, "total": 0, "survivors": []})
                d["total"] += 1
                if outcomes[m].startswith("killed"):
                    d["killed"] += 1
                else:
                    d["survivors"].append(asdict(m) | {"label": m.label()})
            if args.retest:  # the earlier run's kills stand; an earlier survivor not found again stays one
                earlier = json.loads(Path(args.retest).read_text()).get(pkg, {}).get("files", {})
                retested = {m.label() for m in muts}
                for f, d in earlier.items():
                    now = per_file.setdefault(f, {"killed": 0, "total": 0, "survivors": []})
                    now["survivors"] += [s | {"label": s["label"] + "  (not found again: not retested)"}
                                         for s in d["survivors"] if s["label"] not in retested]
                    now["total"], now["killed"] = d["total"], d["total"] - len(now["survivors"])
            results[pkg] = {"baseline": info, "files": per_file}

    print("\n== mutation score")
    grand_k = grand_t = 0
    for pkg, r in results.items():
        k = sum(d["killed"] for d in r["files"].values())
        t = sum(d["total"] for d in r["files"].values())
        grand_k, grand_t = grand_k + k, grand_t + t
        print(f"{pkg}: {k}/{t} killed")
        for f, d in r["files"].items():
            print(f"  {f}: {d['killed']}/{d['total']}")
    print(f"total: {grand_k}/{grand_t} killed")
    print("\n== survivors")
    for r in results.values():
        for d in r["files"].values():
            for s in d["survivors"]:
                print("  " + s["label"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
