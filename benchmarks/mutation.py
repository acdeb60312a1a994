"""Mutation testing of the graded exercises: do the hidden tests catch plausible mistakes?

    .venv/bin/python benchmarks/mutation.py [--assignment 06_zero_shot] [--exercise q2_extract_solution]
                                            [--max-per-exercise 40] [--out DIR]
    make mutation

For every graded solution region (``### BEGIN SOLUTION`` ... ``### END SOLUTION``)
of solutions/*/*.ipynb, systematic mutations of its syntax tree — drop or swap a
statement, swap a call's arguments, flip an operator or comparison, ``mean``↔``sum``,
unwrap ``normalize``/``detach``/``abs``/``clamp``..., change ``dim``/``axis``, shift a
slice bound by one, nudge an integer — are each graded with the exercise's own
test cells (visible and hidden). The notebook runs once in one kernel; a mutant
re-runs only its exercise's segment (the solution cell, the cells after it, its
test cells), then the correct segment restores the state. A mutant is *killed*
when a test cell of its exercise raises (it would lose points), or when it runs
past the timeout. A surviving mutant is either a gap in the tests or equivalent
to a correct answer: equivalents are listed, with the reason, in
benchmarks/mutation_equivalents.json and left out of the kill rate.

Writes docs/results/mutation.json and docs/EXERCISES.md. This takes minutes per
notebook (each mutant re-trains what its exercise trains), so it is a make
target, never part of `make test`.
"""
from __future__ import annotations

import argparse
import ast
import copy
import difflib
import hashlib
import json
import os
import pathlib
import random
import sys
import time
from dataclasses import asdict, dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EQUIVALENTS = pathlib.Path(__file__).with_name("mutation_equivalents.json")

SWAP_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
SWAP_ATTR = {"mean": "sum", "sum": "mean", "max": "min", "min": "max", "argmax": "argmin", "argmin": "argmax",
             "amax": "amin", "amin": "amax", "T": None}
UNWRAP = {"normalize", "detach", "abs", "clamp", "clip", "softmax", "log_softmax", "sigmoid", "relu", "exp", "log",
          "sqrt", "float", "contiguous", "clone", "squeeze", "unsqueeze", "flatten", "t", "no_grad", "eval", "train"}


@dataclass
class Mutant:
    op: str  # which operator made it
    line: str  # the mutated line of the solution, as source
    source: str  # the whole mutated cell

    @property
    def key(self) -> str:
        """Stable id of the mutant: a hash of its normalised source."""
        return hashlib.sha256(ast.dump(ast.parse(self.source)).encode()).hexdigest()[:12]


def solution_lines(source: str) -> range:
    """1-based line numbers strictly inside the solution markers (all of them for several regions)."""
    lines = source.splitlines()
    inside, keep = False, []
    for i, text in enumerate(lines, start=1):
        if BEGIN in text:
            inside = True
        elif END in text:
            inside = False
        elif inside:
            keep.append(i)
    return keep


def _sites(tree: ast.AST, region: set[int]) -> list[tuple[int, str]]:
    """(node index in ast.walk order, operator) for every mutation this tree allows inside ``region``."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", None)
        if line not in region:
            continue
        if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            if not isinstance(node, ast.Return):  # a dropped return is caught by any test: it would flatter the rate
                out.append((i, "drop statement"))
            out.append((i, "swap with next statement"))
        if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
            out.append((i, "swap operator"))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            out.append((i, "swap matmul operands"))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            out.append((i, "drop minus"))
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_CMP:
            out.append((i, "flip comparison"))
        if isinstance(node, ast.Attribute) and SWAP_ATTR.get(node.attr):
            out.append((i, "swap reduction"))
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in UNWRAP and (node.args or isinstance(node.func, ast.Attribute)):
                out.append((i, f"unwrap {name}"))
            if len(node.args) >= 2:
                out.append((i, "swap arguments"))
            for kw in node.keywords:
                if kw.arg in ("dim", "axis") and isinstance(kw.value, (ast.Constant, ast.UnaryOp)):
                    out.append((i, f"change {kw.arg}"))
        if isinstance(node, ast.Slice):
            out += [(i, "slice bound +1")]
        if isinstance(node, ast.Constant) and type(node.value) is int:
            out.append((i, "nudge integer"))
    return out


def _apply(tree: ast.AST, index: int, op: str, region: set[int]) -> ast.AST | None:
    tree = copy.deepcopy(tree)
    nodes = list(ast.walk(tree))
    node = nodes[index]
    parents = {id(c): p for p in nodes for c in ast.iter_child_nodes(p)}

    def replace(new: ast.AST) -> None:
        parent = parents[id(node)]
        for name, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, name, new)
            elif isinstance(value, list):
                for k, item in enumerate(value):
                    if item is node:
                        value[k] = new

    if op in ("drop statement", "swap with next statement"):
        parent = parents[id(node)]
        body = next(v for _, v in ast.iter_fields(parent) if isinstance(v, list) and any(x is node for x in v))
        k = next(j for j, x in enumerate(body) if x is node)
        if op == "drop statement":
            body[k] = ast.Pass()
        elif k + 1 < len(body) and getattr(body[k + 1], "lineno", None) in region:
            body[k], body[k + 1] = body[k + 1], body[k]
        else:
            return None
    elif op == "swap operator":
        node.op = SWAP_BINOP[type(node.op)]()
    elif op == "swap matmul operands":
        node.left, node.right = node.right, node.left
    elif op == "drop minus":
        replace(node.operand)
    elif op == "flip comparison":
        node.ops[0] = SWAP_CMP[type(node.ops[0])]()
    elif op == "swap reduction":
        node.attr = SWAP_ATTR[node.attr]
    elif op.startswith("unwrap"):
        if isinstance(node.func, ast.Attribute) and (not node.args or op in ("unwrap detach", "unwrap float")):
            replace(node.func.value)  # x.detach() -> x
        elif node.args:
            replace(node.args[0])  # F.normalize(x, dim=1) -> x
        else:
            return None
    elif op == "swap arguments":
        node.args[0], node.args[1] = node.args[1], node.args[0]
    elif op.startswith("change"):
        kw = next(k for k in node.keywords if k.arg in ("dim", "axis"))
        value = ast.literal_eval(kw.value)
        kw.value = ast.Constant(0 if value not in (0,) else 1)
    elif op == "slice bound +1":
        bound = node.upper if node.upper is not None else node.lower
        if bound is None:
            return None
        shifted = ast.BinOp(left=bound, op=ast.Add(), right=ast.Constant(1))
        if node.upper is not None:
            node.upper = shifted
        else:
            node.lower = shifted
    elif op == "nudge integer":
        node.value = node.value + 1 if node.value in (0, 1) else node.value - 1
    return ast.fix_missing_locations(tree)


def _describe(original: str, mutated: str) -> str:
    """The first changed chunk, as `old` -> `new` (one line each, stripped)."""
    a, b = original.splitlines(), mutated.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            old = " / ".join(x.strip() for x in a[i1:i2]) or "(nothing)"
            new = " / ".join(x.strip() for x in b[j1:j2]) or "(nothing)"
            return f"{old} -> {new}"
    return "(no change)"


def mutants(source: str) -> list[Mutant]:
    """Every distinct, compilable mutant of the solution regions of one cell."""
    region = set(solution_lines(source))
    if not region:
        return []
    tree = ast.parse(source)
    original = ast.unparse(tree)
    seen, out = {original}, []
    for index, op in _sites(tree, region):
        new = _apply(tree, index, op, region)
        if new is None:
            continue
        text = ast.unparse(new)
        if text in seen:
            continue
        seen.add(text)
        try:
            compile(text, "<mutant>", "exec")
        except SyntaxError:
            continue
        out.append(Mutant(op, _describe(original, text)[:200], text))
    return out


# ---------------------------------------------------------------- running cells in one kernel

class Kernel:
    """One IPython kernel in the notebook's folder, quick profile, no widgets or figures on screen."""

    def __init__(self, cwd: pathlib.Path):
        from jupyter_client.manager import start_new_kernel
        env = dict(os.environ, TLCOURSE_PROFILE="quick", MPLBACKEND="Agg", TLCOURSE_WIDGETS="static",
                   TLCOURSE_OFFLINE=os.environ.get("TLCOURSE_OFFLINE", "1"))
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
        self.history: list[str] = []

    def run(self, code: str, timeout: float, remember: bool = True) -> str:
        """'ok', 'error' or 'timeout' (the kernel is then restarted and the remembered cells replayed)."""
        try:
            reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None,
                                                allow_stdin=False)
        except TimeoutError:
            self.restart()
            return "timeout"
        if remember:
            self.history.append(code)
        return "ok" if reply["content"]["status"] == "ok" else "error"

    def restart(self) -> None:
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=120)
        for code in self.history:
            self.kc.execute_interactive(code, timeout=600, output_hook=lambda msg: None, allow_stdin=False)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@dataclass
class ExerciseResult:
    assignment: str
    grade_id: str
    test_ids: list[str]
    mutants: int = 0
    killed: int = 0
    timeouts: int = 0
    survived: list[dict] = field(default_factory=list)
    equivalent: list[dict] = field(default_factory=list)
    sampled_from: int = 0
    seconds: float = 0.0
    measured_utc: str = ""

    @property
    def kill_rate(self) -> float | None:
        scored = self.mutants - len(self.equivalent)
        return self.killed / scored if scored else None


def load_equivalents(path: pathlib.Path = EQUIVALENTS) -> dict[str, str]:
    """``"assignment/grade_id/mutant key" -> reason`` for mutants that are correct answers."""
    if not path.exists():
        return {}
    return {f"{e['assignment']}/{e['grade_id']}/{e['key']}": e["reason"] for e in json.loads(path.read_text())}


def _segments(cells) -> list[tuple[int, int, list[int]]]:
    """(solution cell, last cell of its segment, its test cells) for every graded code solution."""
    sols = [i for i, c in enumerate(cells) if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    out = []
    for k, s in enumerate(sols):
        nxt = sols[k + 1] if k + 1 < len(sols) else len(cells)
        tests = [i for i in range(s + 1, nxt) if cells[i].cell_type == "code"
                 and cells[i].metadata.get("nbgrader", {}).get("grade")]
        if tests:
            out.append((s, tests[-1], tests))
    return out


def _narrow(cells, segments: list[tuple[int, int, list[int]]], tests: str) -> list[tuple[int, int, list[int]]]:
    """``tests="own"``: only the test cells whose grade id starts with the solution's ``qN_`` (a later
    experiment's test cell, which re-trains everything, is left out); ``"check"`` additionally grades
    with the ``qN.grade(...)`` lines of those cells alone (see ``mutate_notebook``)."""
    if tests == "all":
        return segments
    out = []
    for s, end, test_cells in segments:
        prefix = cells[s].metadata["nbgrader"]["grade_id"].split("_", 1)[0] + "_"
        own = [t for t in test_cells if cells[t].metadata["nbgrader"]["grade_id"].startswith(prefix)]
        if own:
            out.append((s, own[-1], own))
    return out


def _grade_lines(source: str) -> str:
    """The ``qN.grade(...)`` calls of a test cell (the check on fixed inputs that its hidden part runs first)."""
    return "\n".join(ln for ln in source.splitlines() if ln.strip().startswith("q") and ".grade(" in ln)


def mutate_notebook(path: pathlib.Path, max_per_exercise: int = 40, min_timeout: float = 30.0,
                    equivalents: dict[str, str] | None = None, log=print,
                    only: set[str] | None = None, tests: str = "all") -> list[ExerciseResult]:
    """Grade every mutant of every exercise (or of those whose grade id is in ``only``) with its own tests."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assignment = path.parent.name
    equivalents = load_equivalents() if equivalents is None else equivalents
    segments = {s: (end, tests_) for s, end, tests_ in _narrow(cells, _segments(cells), tests)}
    kernel = Kernel(path.parent)
    results = []
    try:
        i = 0
        while i < len(cells):
            cell = cells[i]
            if cell.cell_type != "code":
                i += 1
                continue
            todo = [s for s in segments if s >= i and (not only or cells[s].metadata["nbgrader"]["grade_id"] in only)]
            if not todo:
                break  # nothing left to mutate: the rest of the notebook need not run
            if i not in segments:
                kernel.run(cell.source, timeout=900)
                i += 1
                continue
            end, test_cells = segments[i]
            segment = [c.source for c in cells[i:end + 1] if c.cell_type == "code"]
            test_src = {cells[t].source for t in test_cells}
            t0 = time.perf_counter()
            status = [kernel.run(src, timeout=900) for src in segment]
            base_s = time.perf_counter() - t0
            gid = cell.metadata["nbgrader"]["grade_id"]
            if any(st != "ok" for src, st in zip(segment, status) if src in test_src):
                raise RuntimeError(f"{assignment}/{gid}: the solution fails its own tests; fix that first")
            if only and gid not in only:
                i = end + 1
                continue
            res = ExerciseResult(assignment, gid, [cells[t].metadata["nbgrader"]["grade_id"] for t in test_cells])
            if tests == "check":  # mutants graded by the check alone: the solution cell, then qN.grade(...)
                segment = [segment[0], "\n".join(_grade_lines(cells[t].source) for t in test_cells)]
                test_src = {segment[1]}
            every = mutants(cell.source)
            res.sampled_from = len(every)
            chosen = every if len(every) <= max_per_exercise else random.Random(gid).sample(every, max_per_exercise)
            timeout = max(min_timeout, 5 * base_s)
            t_ex = time.perf_counter()
            for m in chosen:
                res.mutants += 1
                outcome = [kernel.run(src, timeout=timeout, remember=False)
                           for src in [m.source, *segment[1:]]]
                failed_tests = [st for src, st in zip(segment[1:], outcome[1:]) if src in test_src and st != "ok"]
                if "timeout" in outcome:
                    res.timeouts += 1
                    res.killed += 1
                elif failed_tests:
                    res.killed += 1
                else:
                    entry = dict(op=m.op, line=m.line, key=m.key)
                    reason = equivalents.get(f"{assignment}/{gid}/{m.key}")
                    (res.equivalent if reason else res.survived).append(entry | ({"reason": reason} if reason else {}))
                    if not reason:
                        log(f"  survived: {gid} {m.op}: {m.line} (key {m.key})")
                for src in segment:  # restore the correct state
                    kernel.run(src, timeout=900, remember=False)
            res.seconds = round(time.perf_counter() - t_ex, 1)
            res.measured_utc = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + \
                {"all": "", "own": ", own tests", "check": ", check only"}[tests]
            rate = res.kill_rate
            log(f"{assignment}/{gid}: {res.killed}/{res.mutants - len(res.equivalent)} killed "
                f"({'n/a' if rate is None else f'{rate:.0%}'}), {len(res.equivalent)} equivalent, "
                f"{res.timeouts} timeouts, {res.seconds:.0f} s")
            results.append(res)
            i = end + 1
    finally:
        kernel.close()
    return results


# ---------------------------------------------------------------- report

def exercises_markdown(data: dict) -> str:
    rows = data["exercises"]
    out = ["# Exercises under mutation", "",
           "Generated by `make mutation` (`benchmarks/mutation.py`); do not edit by hand. Each graded solution is "
           "mutated systematically (a statement dropped or swapped, arguments swapped, an operator or comparison "
           "flipped, `mean`↔`sum`, `normalize`/`detach`/`abs`/... unwrapped, `dim`/`axis` changed, a slice bound "
           "or an integer shifted by one) and each mutant is graded with the exercise's own visible and hidden "
           "tests. *Killed* means a test cell raised (the mutant loses points). Equivalent mutants (correct "
           "answers written another way) are listed with the reason and left out of the rate. Goal: at least 95% "
           "in every exercise.", "",
           f"Measured {data['started_utc']} on {data['machine']}; at most {data['max_per_exercise']} mutants per "
           "exercise (a seeded sample where there are more).", "",
           *[f"Command: `{c}`" for c in data.get("commands", [])], "",
           *[f"Note: {n}" for n in data.get("notes", [])], *([""] if data.get("notes") else []),
           "| exercise | mutants | killed | kill rate | equivalent | surviving | measured |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        scored = r["mutants"] - len(r["equivalent"])
        rate = f"{r['killed'] / scored:.0%}" if scored else "n/a"
        sample = f" (of {r['sampled_from']})" if r["sampled_from"] > r["mutants"] else ""
        out.append(f"| {r['assignment']}/{r['grade_id']} | {r['mutants']}{sample} | {r['killed']} | {rate} | "
                   f"{len(r['equivalent'])} | {len(r['survived'])} | {r.get('measured_utc', '')} |")
    surv = [(r, s) for r in rows for s in r["survived"]]
    if surv:
        out += ["", "## Surviving mutants (gaps in the tests)", ""]
        out += [f"- `{r['assignment']}/{r['grade_id']}` {s['op']}: `{s['line']}` (key {s['key']})" for r, s in surv]
    eq = [(r, s) for r in rows for s in r["equivalent"]]
    if eq:
        out += ["", "## Equivalent mutants", ""]
        out += [f"- `{r['assignment']}/{r['grade_id']}` {s['op']}: `{s['line']}`: {s['reason']}" for r, s in eq]
    return "\n".join(out) + "\n"


def reclassify(data: dict, equivalents: dict[str, str]) -> dict:
    """Move survivors that ``equivalents`` lists (with their reason) out of the rate, without re-running."""
    for r in data["exercises"]:
        still = []
        for s in r["survived"]:
            reason = equivalents.get(f"{r['assignment']}/{r['grade_id']}/{s['key']}")
            (r["equivalent"].append(s | {"reason": reason}) if reason else still.append(s))
        r["survived"] = still
    return data


def _write(data: dict, out: pathlib.Path) -> pathlib.Path:
    results_path = out / "results" / "mutation.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((results_path, json.dumps(data, indent=1)), (out / "EXERCISES.md", exercises_markdown(data))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    print(f"wrote {results_path} and {out / 'EXERCISES.md'}")
    return results_path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    ap.add_argument("--exercise", action="append",
                    help="only this solution grade id, e.g. q3_head_solution (repeatable)")
    ap.add_argument("--max-per-exercise", type=int, default=40, help="mutants graded per exercise (seeded sample)")
    ap.add_argument("--solutions", type=pathlib.Path, default=ROOT / "solutions")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "docs", help="docs folder: results/mutation.json, EXERCISES.md")
    ap.add_argument("--tests", choices=("all", "own", "check"), default="all",
                    help="which tests grade a mutant: every test cell up to the exercise's last (all), only the "
                         "cells graded under its qN_ prefix (own), or its qN.grade(...) check alone (check); "
                         "own and check are for exercises followed by a long experiment")
    ap.add_argument("--reclassify", action="store_true",
                    help="only re-read mutation_equivalents.json into the stored results and rewrite the report")
    args = ap.parse_args(argv)
    if args.reclassify:
        data = reclassify(json.loads((args.out / "results" / "mutation.json").read_text()), load_equivalents())
        _write(data, args.out)
        return data
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from _common import machine
    folders = sorted(p for p in args.solutions.iterdir() if p.is_dir() and (not args.assignment or p.name in args.assignment))
    if not folders:
        ap.error(f"no assignment folders in {args.solutions}" + (f" named {args.assignment}" if args.assignment else ""))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results_path = args.out / "results" / "mutation.json"
    old = json.loads(results_path.read_text()) if results_path.exists() and args.assignment else {"exercises": []}
    only = set(args.exercise or ())
    new = []
    for folder in folders:
        for nb_path in sorted(folder.glob("*.ipynb")):
            new += [asdict(r) for r in mutate_notebook(nb_path, args.max_per_exercise, only=only or None,
                                                       tests=args.tests)]
    fresh = {(r["assignment"], r["grade_id"]) for r in new}
    replaced = (lambda r: (r["assignment"], r["grade_id"]) in fresh) if only else \
        (lambda r: r["assignment"] in {f.name for f in folders})
    rows = [r for r in old["exercises"] if not replaced(r)] + new
    command = "python benchmarks/mutation.py" + (f" {' '.join(argv)}" if argv is not None else
                                                 "".join(f" {a}" for a in sys.argv[1:]))
    commands = [c for c in old.get("commands", []) if c != command] + [command] if args.assignment else [command]
    m = machine()
    data = {"started_utc": started, "max_per_exercise": args.max_per_exercise, "commands": commands,
            **({"notes": old["notes"]} if old.get("notes") else {}),
            "machine": f"{m['cpus']} CPUs, {m['cpu_model']}, torch {m['torch']}",
            "exercises": sorted(rows, key=lambda r: (r["assignment"], r["grade_id"]))}
    _write(data, args.out)
    return data


if __name__ == "__main__":
    main()
