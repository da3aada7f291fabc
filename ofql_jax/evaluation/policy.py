"""Fast decisions for deployment: one compiled call per decision, its randomness drawn in it.

Evaluation steps many environments with one vmapped call; a controller that acts on one
state at a time pays for every host round trip instead. ``Policy`` keeps on the device only
the parameters it needs and a random key, and each decision is one compiled call
``(policy_params, critic_params, key, obs) -> (actions, next_key)`` that splits the key and
draws the noise (and, with N > 1 candidates, the Gumbel draws) where the networks run: only
the observations go in and the actions come out. The key's buffer is donated to the call
that replaces it. One executable per observation shape, compiled ahead of time on first
use (``benchmarks/throughput.py`` reports the decision rate).

With ``draws="device"`` the ``k``-th call (``k = 0, 1, ...``) of ``Policy(agent, state, N,
seed, ...)`` returns ``agent.sample_actions(state, obs, decision_key(seed, k), N, ...)`` with
the same actor and temperatures, to float32 rounding. On a CPU the "device" is the host, and
there the draws inside the call measured slower than NumPy's (OFQL: a third fewer single-state
decisions/s; ``benchmarks/throughput.py --decision_designs device host``): ``draws="host"``
draws with a seeded NumPy generator and passes the draws into the same compiled decision (the
same distribution, another random stream), and ``"auto"`` (the default) takes it on CPUs and
``"device"`` on accelerators.

Example:
    >>> policy = Policy(agent, state, num_candidates=1, seed=0)  # doctest: +SKIP
    >>> action = policy(observation)  # [obs_dim] -> [act_dim], in [-1, 1]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ofql_jax.agents import Agent, AgentState
from ofql_jax.agents.base import scale_noise, select_actor

Params = Any
DRAWS = ("auto", "device", "host")


def decision_key(seed: int, call: int) -> jax.Array:
    """The key of a device-drawing ``Policy``'s ``call``-th decision (0-based): ``key(seed)``
    split ``call + 1`` times, each split's first half carried and its second half used.

    Example:
        >>> k = decision_key(0, 1)  # the second decision of Policy(..., seed=0, draws="device")
    """
    key = jax.random.key(seed)
    for _ in range(call + 1):
        key, used = jax.random.split(key)
    return used


def draw_shapes(obs_shape: tuple[int, ...], agent: Agent, num_candidates: int):
    """Shapes of one decision's noise and Gumbel draws (``None`` for N = 1).

    Example:
        >>> draw_shapes((50, 17), agent, 50)  # doctest: +SKIP
        ((50, 50, 6), (50, 50))
    """
    batch = obs_shape[:-1] + ((num_candidates,) if num_candidates > 1 else ())
    return batch + (agent.noise_dim,), (batch if num_candidates > 1 else None)


def decision_fn(
    agent: Agent, num_candidates: int, noise_temperature: float, q_temperature: float
) -> Callable[[Params, Params, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """``(policy_params, critic_params, key, obs) -> (actions, next_key)``: one decision with
    the randomness of ``agent.sample_actions`` (noise scaled as ``agents.base.scale_noise``,
    with N > 1 a draw from ``softmax(q_temperature * Q)`` by the Gumbel-max trick).

    Example:
        >>> fn = decision_fn(agent, 50, 1.0, 1.0)  # doctest: +SKIP
        >>> actions, key = jax.jit(fn)(params, critic_params, key, obs)  # doctest: +SKIP
    """

    def decide(policy_params, critic_params, key, obs):
        key, used = jax.random.split(key)
        k_noise, k_pick = jax.random.split(used)  # as sample_actions splits its key
        noise_shape, gumbel_shape = draw_shapes(obs.shape, agent, num_candidates)
        noise = jax.random.normal(k_noise, noise_shape)
        noise = scale_noise(noise, noise_temperature, agent.scaled_noise_dim)
        gumbel = None if gumbel_shape is None else jax.random.gumbel(k_pick, gumbel_shape)
        return decide_with(agent, q_temperature)(policy_params, critic_params, obs, noise,
                                                 gumbel), key  # fmt: skip

    return decide


def decide_with(agent: Agent, q_temperature: float) -> Callable:
    """``(policy_params, critic_params, obs, noise, gumbel) -> actions`` from given draws
    (``gumbel=None`` for N = 1, where the critics are not read).

    Example:
        >>> actions = decide_with(agent, 1.0)(params, {}, obs, noise, None)  # doctest: +SKIP
    """

    def decide(policy_params, critic_params, obs, noise, gumbel):
        if gumbel is None:
            return agent.decide(policy_params, {}, obs, noise)
        return agent.decide(policy_params, critic_params, obs, noise, gumbel, q_temperature)

    return decide


class Policy:
    """The one-step policy (``num_candidates = 1``) or the selection among N candidates.

    Candidates are scored by the target critics' min and one is drawn from
    ``softmax(q_temperature * Q)`` with the Gumbel-max trick; the initial noise is scaled by
    ``noise_temperature`` and the ``actor`` parameters are ``"online"`` or ``"ema"``: the
    maths of ``agent.sample_actions``. ``draws`` says where the randomness comes from
    (module docstring); ``seed`` makes either reproducible. Accepts one state ``[obs_dim]``
    or a batch ``[..., obs_dim]``; returns actions in [-1, 1]. It carries its random state,
    so one instance serves one caller at a time.
    """

    def __init__(
        self,
        agent: Agent,
        state: AgentState,
        num_candidates: int = 1,
        seed: int = 0,
        actor: str = "online",
        noise_temperature: float = 1.0,
        q_temperature: float = 1.0,
        draws: str = "auto",
    ):
        if num_candidates > 1 and not agent.has_critic:
            raise ValueError(
                f"{agent.name} has no critic to score candidates: use num_candidates=1"
            )
        if draws not in DRAWS:
            raise ValueError(f"unknown draws {draws!r}: use one of {', '.join(DRAWS)}")
        if draws == "auto":
            draws = "host" if jax.default_backend() == "cpu" else "device"
        self.agent, self.num_candidates, self.draws = agent, num_candidates, draws
        self.noise_temperature = float(noise_temperature)
        self.policy_params = jax.device_put(select_actor(state, actor))
        # N = 1 never reads the critics, so they stay off the device.
        self.critic_params = (
            jax.device_put(state.target_critic_params) if num_candidates > 1 else {}
        )
        # Temperatures are compile-time constants: nothing but draws and obs cross per call.
        if draws == "device":
            self.key = jax.device_put(jax.random.key(seed))
            self._fn = decision_fn(agent, num_candidates, self.noise_temperature,
                                   float(q_temperature))  # fmt: skip
        else:
            self.rng = np.random.default_rng(seed)
            self._fn = decide_with(agent, float(q_temperature))
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _executable(self, obs, *args):
        if obs.shape not in self._compiled:
            if self.draws == "device":  # donating the key lets the next key reuse its buffer
                lowered = jax.jit(self._fn, donate_argnums=2).lower(
                    self.policy_params, self.critic_params, self.key, obs
                )
            else:
                lowered = jax.jit(self._fn).lower(
                    self.policy_params, self.critic_params, obs, *args
                )
            self._compiled[obs.shape] = lowered.compile()
        return self._compiled[obs.shape]

    def _host_draws(self, obs_shape: tuple[int, ...]):
        noise_shape, gumbel_shape = draw_shapes(obs_shape, self.agent, self.num_candidates)
        noise = self.rng.standard_normal(noise_shape, dtype=np.float32)
        noise = scale_noise(noise, np.float32(self.noise_temperature),
                            self.agent.scaled_noise_dim)  # fmt: skip
        if gumbel_shape is None:
            return noise, None
        return noise, self.rng.gumbel(size=gumbel_shape).astype(np.float32)

    def __call__(self, obs: np.ndarray | jax.Array) -> np.ndarray:
        if not (isinstance(obs, jax.Array) and obs.dtype == np.float32):
            obs = np.asarray(obs, np.float32)  # a device array stays where it is
        if self.draws == "device":
            run = self._executable(obs)
            actions, self.key = run(self.policy_params, self.critic_params, self.key, obs)
        else:
            noise, gumbel = self._host_draws(obs.shape)
            run = self._executable(obs, noise, gumbel)
            actions = run(self.policy_params, self.critic_params, obs, noise, gumbel)
        return np.asarray(actions)
