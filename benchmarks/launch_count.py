"""How many kernels a compiled XLA program launches per call, read from its optimized HLO.

On a GPU each top-level fusion, library call (cuBLAS, cuDNN) or copy of a computation runs
as one kernel launch (a few microseconds of fixed cost each without CUDA graphs), a
``while`` runs its body once per trip, and a ``conditional`` reads its predicate back to
the host before it can launch a branch. A training program of a few seeds whose time per
update is close to ``kernels per update x a few microseconds`` is bound by launches, not
arithmetic: more members per program, or fewer kernels, then help, a faster matmul does
not. ``benchmarks/device_check.py`` records this beside each program's speed.

The count is structural: a fusion is one launch (XLA may split a few into two), a library
call is one (cuBLAS may add a small kernel), and a ``while`` without a known trip count
counts once (``unknown_trip_counts`` says how many). On a CPU the same rules count XLA's
thunks, which are not launches; the figure is then only a size.

Example:
    >>> hlo = '''
    ... %b (p: (s32[], f32[4])) -> (s32[], f32[4]) {
    ...   %p = (s32[], f32[4]{0}) parameter(0)
    ...   %a = f32[4]{0} fusion(%p), kind=kLoop, calls=%f
    ...   %b = f32[4]{0} custom-call(%a), custom_call_target="__cublas$gemm"
    ...   ROOT %t = (s32[], f32[4]{0}) tuple(%a, %b)
    ... }
    ... %k (p: (s32[], f32[4])) -> pred[] {
    ...   %p = (s32[], f32[4]{0}) parameter(0)
    ...   ROOT %lt = pred[] fusion(%p), kind=kLoop, calls=%g
    ... }
    ... ENTRY %main (x: f32[4]) -> f32[4] {
    ...   %x = f32[4]{0} parameter(0)
    ...   %c = f32[4]{0} copy(%x)
    ...   ROOT %w = (s32[], f32[4]{0}) while(%c), condition=%k, body=%b, backend_config={TRIP}
    ... }'''.replace("TRIP", '"known_trip_count":{"n":"10"}')
    >>> launch_evidence(hlo)["kernels_per_call"]  # 1 copy + 10 x (2 in the body + 1 condition)
    31
"""

from __future__ import annotations

import re

# Instructions that launch nothing: bookkeeping of buffers and tuples.
_FREE = frozenset({
    "parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
    "add-dependency", "opt-barrier", "domain", "copy-done", "partition-id", "replica-id",
})  # fmt: skip
_HEADER = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*\(.*\{\s*$")
_OPCODE = re.compile(r"^\s*(?:ROOT\s+)?%[\w.\-]+\s*=\s*.*?\s([a-z][a-z0-9\-]*)\(")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_CALLEE = {
    "body": re.compile(r"\bbody=%([\w.\-]+)"),
    "condition": re.compile(r"\bcondition=%([\w.\-]+)"),
    "to_apply": re.compile(r"\bto_apply=%([\w.\-]+)"),
    "branches": re.compile(r"branch_computations=\{([^}]*)\}"),
    "true": re.compile(r"\btrue_computation=%([\w.\-]+)"),
    "false": re.compile(r"\bfalse_computation=%([\w.\-]+)"),
}


def _computations(hlo: str) -> tuple[dict[str, list[str]], str | None]:
    """Instruction lines of every computation, and the entry's name."""
    comps: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo.splitlines():
        header = _HEADER.match(line)
        if header and current is None:
            current = header.group(2)
            comps[current] = []
            if header.group(1):
                entry = current
        elif current is not None and line.strip() == "}":
            current = None
        elif current is not None and line.strip():
            comps[current].append(line)
    return comps, entry


def launch_evidence(hlo: str) -> dict:
    """``kernels_per_call`` (launches of one call, ``while`` bodies times their trip counts),
    ``host_syncs_per_call`` (conditionals, whose predicate the host reads, and trips of
    ``while`` loops without a known trip count), ``loops`` (``[trip count, kernels per trip]``
    of the entry's loops: a training program's scan over its updates is the one with the most
    trips) and ``unknown_trip_counts``. Empty counts when the text has no entry computation.
    """
    comps, entry = _computations(hlo)
    unknown = 0
    memo: dict[str, tuple[int, int]] = {}

    def count(name: str) -> tuple[int, int]:  # (kernels, host syncs) of one run of `name`
        nonlocal unknown
        if name in memo:
            return memo[name]
        memo[name] = (0, 0)  # a cycle cannot occur in HLO; guards a malformed text
        kernels = syncs = 0
        for line in comps.get(name, []):
            op = _OPCODE.match(line)
            if not op or op.group(1) in _FREE:
                continue
            opcode = op.group(1)
            if opcode == "while":
                n, known, per_trip, trip_syncs = _loop(line, count)
                unknown += not known
                kernels += n * per_trip
                syncs += n * trip_syncs + (0 if known else n)
            elif opcode == "conditional":
                branches = _branches(line)
                worst = max((count(b) for b in branches), default=(0, 0))
                kernels += worst[0]
                syncs += worst[1] + 1
            elif opcode == "call":
                inner = count(_callee(line, "to_apply"))
                kernels += inner[0]
                syncs += inner[1]
            else:  # a fusion, a library call, a copy, an unfused op: one launch
                kernels += 1
        memo[name] = (kernels, syncs)
        return memo[name]

    if entry is None:
        return {"kernels_per_call": 0, "host_syncs_per_call": 0, "loops": [],
                "unknown_trip_counts": 0}  # fmt: skip
    kernels, syncs = count(entry)
    return {
        "kernels_per_call": kernels,
        "host_syncs_per_call": syncs,
        "loops": _entry_loops(comps, entry, count),
        "unknown_trip_counts": unknown,
    }


def _loop(line: str, count) -> tuple[int, bool, int, int]:
    """A ``while`` line's trips (1 when unknown), whether they are known, and the kernels and
    host syncs of one trip (body and condition)."""
    trip = _TRIP.search(line)
    body, cond = count(_callee(line, "body")), count(_callee(line, "condition"))
    return (int(trip.group(1)) if trip else 1, trip is not None, body[0] + cond[0],
            body[1] + cond[1])  # fmt: skip


def _callee(line: str, field: str) -> str:
    found = _CALLEE[field].search(line)
    return found.group(1) if found else ""


def _branches(line: str) -> list[str]:
    found = _CALLEE["branches"].search(line)
    if found:
        return [b.strip().lstrip("%") for b in found.group(1).split(",") if b.strip()]
    return [c for c in (_callee(line, "true"), _callee(line, "false")) if c]


def _entry_loops(comps: dict[str, list[str]], entry: str, count) -> list[list[int]]:
    """``[trip count, kernels per trip]`` of each ``while`` run from the entry (through
    ``call``s, as XLA wraps loops), outermost only."""
    loops, stack, seen = [], [entry], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in comps.get(name, []):
            op = _OPCODE.match(line)
            if not op:
                continue
            if op.group(1) == "while":
                n, _, per_trip, _ = _loop(line, count)
                loops.append([n, per_trip])
            elif op.group(1) == "call":
                stack.append(_callee(line, "to_apply"))
    return loops
