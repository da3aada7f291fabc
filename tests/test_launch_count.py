"""benchmarks/launch_count.py: kernels per call from an optimized HLO, against hand counts."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from launch_count import launch_evidence  # noqa: E402

HAND_HLO = """
%b (p: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p = (s32[], f32[4]{0}) parameter(0)
  %g = f32[4]{0} get-tuple-element(%p), index=1
  %a = f32[4]{0} fusion(%g), kind=kLoop, calls=%f
  %m = f32[4]{0} custom-call(%a), custom_call_target="__cublas$gemm"
  ROOT %t = (s32[], f32[4]{0}) tuple(%a, %m)
}

%k (p: (s32[], f32[4])) -> pred[] {
  %p = (s32[], f32[4]{0}) parameter(0)
  ROOT %lt = pred[] fusion(%p), kind=kLoop, calls=%h
}

%one (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %n = f32[4]{0} negate(%p)
}

%two (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %e = f32[4]{0} exponential(%p)
  ROOT %n = f32[4]{0} negate(%e)
}

ENTRY %main (x: f32[4], i: s32[]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %i = s32[] parameter(1)
  %c = f32[4]{0} copy(%x)
  %w = (s32[], f32[4]{0}) while(%c), condition=%k, body=%b, backend_config=TRIP
  %r = f32[4]{0} get-tuple-element(%w), index=1
  ROOT %s = f32[4]{0} conditional(%i, %r, %r), branch_computations={%one, %two}
}
"""


def test_hand_written_module():
    known = launch_evidence(HAND_HLO.replace("TRIP", '{"known_trip_count":{"n":"10"}}'))
    # copy + 10 x (fusion + gemm + condition's fusion) + the larger branch (2)
    assert known["kernels_per_call"] == 1 + 10 * 3 + 2
    assert known["host_syncs_per_call"] == 1  # the conditional's predicate
    assert known["loops"] == [[10, 3]] and known["unknown_trip_counts"] == 0
    unknown = launch_evidence(HAND_HLO.replace("TRIP", "{}"))
    assert unknown["kernels_per_call"] == 1 + 3 + 2
    assert unknown["host_syncs_per_call"] == 2 and unknown["unknown_trip_counts"] == 1


def _program(length: int) -> str:
    def f(x, w):
        def body(c, _):
            c, _ = jax.lax.scan(lambda c2, _: (jnp.tanh(c2 @ w), None), c, None, length=3)
            c = jax.lax.cond(c.sum() > 0, lambda c: c * 2, lambda c: c - 1, c)
            return c, None

        return jax.lax.scan(body, x, None, length=length)[0]

    x = jnp.ones((4, 4))
    return jax.jit(f).lower(x, x).compile().as_text()


def test_compiled_scan_counts_each_trip_and_each_conditional():
    short, long = launch_evidence(_program(3)), launch_evidence(_program(7))
    assert [trips for trips, _ in short["loops"]] == [3]
    assert [trips for trips, _ in long["loops"]] == [7]
    per_trip = long["loops"][0][1]
    assert per_trip == short["loops"][0][1] > 3 * 3  # the inner scan's 3 trips and more
    # Four more trips of the outer scan add four times its body, nothing else.
    assert long["kernels_per_call"] - short["kernels_per_call"] == 4 * per_trip
    assert (short["host_syncs_per_call"], long["host_syncs_per_call"]) == (3, 7)
    assert long["unknown_trip_counts"] == 0
