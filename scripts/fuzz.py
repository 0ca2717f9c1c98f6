#!/usr/bin/env python3
"""Long fuzzing runs, and the agreement of ``verify`` with the interpreter's verifier.

Damages copies of sound models (the corpus folder's and the test suite's
synthetic ones) with the mutations of tests/fuzzing.py -- byte and bit flips,
truncation, values planted at the positions that really hold offsets, vtable
entries and lengths, table loops, vtables at their own table, duplicated,
inserted, deleted and spliced regions -- opens each copy and touches
everything the public API offers.  A case fails on an exception outside
``TFLiteWeightsError``, on taking more than 2 s, or on allocating more than
the bound of ``fuzzing.memory_bound`` (tracemalloc peak).  Failing inputs are
written to ``--out`` with a note; the report sums everything up.

    python scripts/fuzz.py --minutes 10 [--seed 1] [--corpus ../shared/corpus]
                           [--sweep 30] [--compare 3000] [--out fuzz-out] [--atheris]

``--sweep M`` then spends M minutes planting, at every structural position of
every model, each of the values that break readers most often at that kind
of position (in a random order: a partial sweep still covers every model).
``--compare N`` also writes N damaged copies to a temporary folder, loads each
in the LiteRT interpreter in a child process, and counts how often both refuse,
both accept, only ``verify`` refuses, or only the interpreter refuses (with
examples of each).  Needs ai-edge-litert.  With ``--atheris`` (and atheris
installed) the fuzzing loop is libFuzzer's, seeded with the same models.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import sys
import tempfile
import time

from tests.support import fuzzing
from tests.support.paths import ROOT

DEFAULT_CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")


def signature(failure: str) -> str:
    """A failure with indices and names blanked, to count distinct defects once."""
    s = re.sub(r"\[\d+\]", "[i]", failure)
    s = re.sub(r"\[('[^']*'|\"[^\"]*\")\]", "[k]", s)
    s = re.sub(r"\(\d+\)", "(i)", s)
    s = re.sub(r"\d+(\.\d+)? (s|MiB)", "N \\2", s)
    return re.sub(r"\d+-byte", "N-byte", s)


def limit_address_space(extra: int) -> None:
    """Cap the address space a little above what the process uses now, so a read
    that asks for far too much memory fails with MemoryError instead of swapping
    the machine."""
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = vm + extra
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


def load_models(corpora) -> "dict[str, bytes]":
    models = {f"synthetic:{k}": v for k, v in fuzzing.synthetic_models().items()}
    for folder in corpora:
        models.update(fuzzing.corpus_models(folder, max_size=1 << 23))
    return models


def fuzz(models, minutes: float, seed: int, out: str, memory_every: int, log) -> dict:
    names = sorted(models)
    sites = {n: fuzzing.find_sites(models[n]) for n in names}
    donors = [models[n] for n in names]
    rng = fuzzing.Chooser(seed)
    stop = time.monotonic() + 60 * minutes
    stats = collections.Counter()
    by_kind = collections.Counter()
    failures: dict[str, dict] = {}
    slowest = (0.0, "")
    peak = (0, "")
    i = 0
    while time.monotonic() < stop:
        i += 1
        name = rng.choice(names)
        kind = rng.choice(fuzzing.KINDS)
        data, note = fuzzing.mutate(models[name], sites[name], rng, kind, donors)
        r = fuzzing.run_case(data, f"{name}: {note}",
                             measure_memory=memory_every and i % memory_every == 0)
        stats["cases"] += 1
        by_kind[kind] += 1
        stats["opened" if r.opened else "refused at open"] += 1
        if r.peak:
            stats["memory measured"] += 1
            if r.peak > peak[0]:
                peak = (r.peak, f"{r.peak / 2**20:.1f} MiB for a {len(data)}-byte file "
                                f"({r.peak / len(data):.0f}x): {r.note}")
        if r.seconds > slowest[0]:
            slowest = (r.seconds, r.note)
        if not r.ok:
            stats["failures"] += 1
            sig = signature(r.failure)
            entry = failures.get(sig)
            if entry is None or len(data) < entry["size"]:
                os.makedirs(out, exist_ok=True)
                fname = f"crash-{len(failures) if entry is None else entry['index']:03d}.tflite"
                with open(os.path.join(out, fname), "wb") as f:
                    f.write(data)
                entry = {"index": len(failures) if entry is None else entry["index"],
                         "file": fname, "size": len(data), "failure": r.failure,
                         "note": r.note, "detail": r.detail,
                         "count": (entry or {}).get("count", 0)}
                failures[sig] = entry
                log(f"[{i}] FAIL {r.failure}\n    {r.note}\n    -> {fname}")
            failures[sig]["count"] += 1
        if i % 500 == 0:
            log(f"[{i}] {stats['cases']} cases, {stats['failures']} failing, "
                f"{len(failures)} distinct")
    return {"cases": stats["cases"], "stats": dict(stats), "by_kind": dict(by_kind),
            "failures": list(failures.values()), "slowest": slowest,
            "largest_peak": peak, "models": names}


def sweep(models, minutes: float, seed: int, out: str, log) -> dict:
    """Every structural position of every model, planted with each of its kind's
    worst values (fuzzing.worst_values), read on the clock (no tracemalloc; every
    public member too for models up to 64 KiB), in a seeded random order until the
    time is up."""
    import random
    plan = []
    for name in sorted(models):
        data = models[name]
        sites = fuzzing.find_sites(data)
        per_field = collections.Counter()
        for i, s in enumerate(sites):
            # the same field of the 100th tensor adds little: three of each field
            field = (s.kind, re.sub(r"\[\d+\]", "[i]", s.name))
            per_field[field] += 1
            if per_field[field] > 3:
                continue
            for v in fuzzing.worst_values(s, len(data), sites):
                plan.append((name, i, v))
    random.Random(seed).shuffle(plan)
    site_cache = {}
    stop = time.monotonic() + 60 * minutes
    failures: dict[str, dict] = {}
    done = 0
    slowest = (0.0, "")
    for name, i, v in plan:
        if time.monotonic() > stop:
            break
        data = models[name]
        if name not in site_cache:
            site_cache[name] = fuzzing.find_sites(data)
        s = site_cache[name][i]
        d = bytearray(data)
        fuzzing._plant(d, s, v)
        note = f"{name}: plant {fuzzing._u(v, s.width):#x} at {s.kind} {s.name}@{s.pos}"
        # every public member too for models up to 64 KiB; the larger ones, whose
        # walk through every member takes seconds, are read as an application does
        r = fuzzing.run_case(bytes(d), note, measure_memory=False,
                             thorough=len(d) <= 64 << 10)
        done += 1
        if r.seconds > slowest[0]:
            slowest = (r.seconds, note)
        if not r.ok:
            sig = signature(r.failure)
            if sig not in failures:
                os.makedirs(out, exist_ok=True)
                fname = f"sweep-{len(failures):03d}.tflite"
                with open(os.path.join(out, fname), "wb") as f:
                    f.write(bytes(d))
                failures[sig] = {"file": fname, "failure": r.failure, "note": note,
                                 "detail": r.detail, "count": 0, "size": len(d)}
                log(f"[sweep {done}] FAIL {r.failure}\n    {note}\n    -> {fname}")
            failures[sig]["count"] += 1
        if done % 2000 == 0:
            log(f"[sweep {done}/{len(plan)}] {len(failures)} distinct failures")
    return {"planned": len(plan), "cases": done, "failures": list(failures.values()),
            "slowest": slowest}


def compare(models, n: int, seed: int, log) -> dict:
    """verify against the interpreter on ``n`` damaged copies."""
    names = sorted(models)
    sites = {k: fuzzing.find_sites(models[k]) for k in names}
    donors = [models[k] for k in names]
    rng = fuzzing.Chooser(seed + 1)
    table = collections.Counter()
    by_class = collections.Counter()
    examples = collections.defaultdict(list)
    stricter = collections.Counter()
    laxer = collections.Counter()
    crashes = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, fuzzing.InterpreterPool() as pool:
        for i in range(n):
            name = rng.choice(names)
            data, note = fuzzing.mutate(models[name], sites[name], rng, None, donors)
            path = os.path.join(tmp, "damaged.tflite")
            with open(path, "wb") as f:
                f.write(data)
            try:
                ours, first = fuzzing.verify_refuses(data)
            except Exception as e:  # noqa: BLE001 - a defect of verify itself
                ours, first = True, f"verify raised {type(e).__name__}: {e}"
                table["verify raised"] += 1
            res = pool.check(path)
            cls = res["class"]
            by_class[(cls, ours)] += 1
            theirs = cls in ("invalid_flatbuffer", "invalid_model", "crash")
            bucket = {(True, True): "both refuse", (False, False): "both accept",
                      (True, False): "only verify refuses",
                      (False, True): "only the interpreter refuses"}[(ours, theirs)]
            table[bucket] += 1
            if bucket == "only verify refuses":
                stricter[_rule(first)] += 1
            elif bucket == "only the interpreter refuses":
                laxer[f"{cls}: " + _rule(res.get("message", "").split("\n")[0])] += 1
            if cls == "crash" and len(crashes) < 12:
                crashes.append({"model": name, "damage": note, "verify": first[:300]})
            if len(examples[bucket]) < 8 and bucket != "both accept":
                examples[bucket].append({"model": name, "damage": note, "verify": first[:300],
                                         "interpreter": f"{cls}: "
                                         f"{res.get('message', '')[:300]}"})
            if (i + 1) % 500 == 0:
                log(f"compare: {i + 1}/{n} in {time.monotonic() - t0:.0f} s: {dict(table)}")
    return {"files": n, "table": dict(table),
            "by_interpreter_class": {f"{c} / verify {'refuses' if o else 'accepts'}": k
                                     for (c, o), k in sorted(by_class.items())},
            "only_verify_rules": dict(stricter.most_common()),
            "only_interpreter_reasons": dict(laxer.most_common()),
            "interpreter_crashes": crashes,
            "examples": dict(examples), "seconds": time.monotonic() - t0}


def _rule(defect: str) -> str:
    """A verify defect with its place, numbers and quoted names blanked: the rule."""
    what = defect.split(": ", 1)[-1]
    what = re.sub(r"'[^']*'", "'…'", what)
    what = re.sub(r"\[[-\d, ]*\]", "[…]", what)
    what = re.sub(r"-?\d+", "N", what)
    return what[:120]


def run_atheris(models, minutes: float) -> int:
    import atheris  # noqa: F401 - optional
    seeds = tempfile.mkdtemp(prefix="fuzz-seeds-")
    for k, v in models.items():
        with open(os.path.join(seeds, re.sub(r"\W", "_", k)), "wb") as f:
            f.write(v)

    def one(data: bytes) -> None:
        r = fuzzing.run_case(bytes(data), measure_memory=False)
        if not r.ok:
            raise RuntimeError(f"{r.failure}\n{r.detail}")

    atheris.Setup([sys.argv[0], seeds, f"-max_total_time={int(minutes * 60)}"], one)
    atheris.Fuzz()
    return 0


def write_report(path: str, args, result: dict, agreement: "dict | None") -> None:
    lines = ["# Fuzzing report", "",
             f"seed {args.seed}, {args.minutes} min, corpus {', '.join(args.corpus)}, "
             f"{len(result['models'])} models", ""]
    st = result["stats"]
    lines += [f"- cases: {result['cases']} ({st.get('opened', 0)} opened, "
              f"{st.get('refused at open', 0)} refused at open)",
              f"- memory measured on {st.get('memory measured', 0)} cases; largest peak: "
              f"{result['largest_peak'][1]}",
              f"- slowest case: {result['slowest'][0]:.3f} s ({result['slowest'][1]})",
              f"- failing cases: {st.get('failures', 0)}, distinct: {len(result['failures'])}",
              "", "Cases per mutation: " + ", ".join(f"{k} {v}" for k, v in
                                                       sorted(result["by_kind"].items())), ""]
    if "sweep" in result:
        sw = result["sweep"]
        lines += [f"- sweep: {sw['cases']} of {sw['planned']} planted values read, "
                  f"{len(sw['failures'])} distinct failures; slowest {sw['slowest'][0]:.3f} s "
                  f"({sw['slowest'][1]})", ""]
    for f in result["failures"]:
        lines += [f"## {f['file']} ({f['count']} cases)", "", f"- {f['failure']}",
                  f"- damage: {f['note']}", "", "```", f["detail"].strip(), "```", ""]
    if agreement:
        lines += ["# verify and the interpreter", "",
                  f"{agreement['files']} damaged files in {agreement['seconds']:.0f} s", ""]
        for k, v in sorted(agreement["table"].items()):
            lines.append(f"- {k}: {v}")
        lines += ["", "By the interpreter's reason:", ""]
        for k, v in agreement["by_interpreter_class"].items():
            lines.append(f"- {k}: {v}")
        lines += ["", "Rules behind 'only verify refuses' (first defect):", ""]
        for k, v in agreement["only_verify_rules"].items():
            lines.append(f"- {v}: {k}")
        lines += ["", "Reasons behind 'only the interpreter refuses':", ""]
        for k, v in agreement["only_interpreter_reasons"].items():
            lines.append(f"- {v}: {k}")
        lines += ["", "Files that crashed the interpreter:", ""]
        for e in agreement["interpreter_crashes"]:
            lines.append(f"- {e['model']}: {e['damage']} (verify: {e['verify'] or 'accepts'})")
        for bucket, ex in agreement["examples"].items():
            lines += ["", f"## {bucket}", ""]
            for e in ex:
                lines.append(f"- {e['model']}: {e['damage']}\n  - verify: {e['verify']}\n"
                             f"  - interpreter: {e['interpreter']}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"fuzz": result, "agreement": agreement}, f, indent=1, default=str)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", action="append", default=None, metavar="DIR",
                    help="folder of sound models (repeatable; default ../shared/corpus)")
    ap.add_argument("--out", default="fuzz-out", help="folder for failing inputs and the report")
    ap.add_argument("--report", default=None, help="report path (default OUT/report.md)")
    ap.add_argument("--compare", type=int, default=0, metavar="N",
                    help="compare verify with the interpreter on N damaged files")
    ap.add_argument("--memory-every", type=int, default=4, metavar="K",
                    help="measure the allocation peak on every K-th case (0: never)")
    ap.add_argument("--atheris", action="store_true", help="use atheris when installed")
    ap.add_argument("--sweep", type=float, default=0.0, metavar="MINUTES",
                    help="then plant each structural position's worst values, in a random "
                         "order, for this long")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    args.corpus = args.corpus or [DEFAULT_CORPUS]
    limit_address_space(8 << 30)
    models = load_models(args.corpus)
    log(f"{len(models)} models: {', '.join(sorted(models))}")
    if args.atheris:
        try:
            return run_atheris(models, args.minutes)
        except ImportError:
            log("atheris is not installed: plain random mutation")
    result = fuzz(models, args.minutes, args.seed, args.out, args.memory_every, log)
    if args.sweep:
        result["sweep"] = sweep(models, args.sweep, args.seed, args.out, log)
        result["failures"] += result["sweep"]["failures"]
    agreement = compare(models, args.compare, args.seed, log) if args.compare else None
    os.makedirs(args.out, exist_ok=True)
    report = args.report or os.path.join(args.out, "report.md")
    write_report(report, args, result, agreement)
    log(f"{result['cases']} cases, {len(result['failures'])} distinct failures; "
        f"report: {report}")
    if agreement:
        log(f"agreement: {agreement['table']}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
