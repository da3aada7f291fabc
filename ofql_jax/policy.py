"""Fast decisions for deployment: one compiled call per decision, randomness drawn on the host.

Evaluation steps many environments with one vmapped call; a controller that acts on
one state at a time pays JAX's dispatch cost on every call instead. ``Policy`` keeps
only the parameters it needs on the device, compiles ahead of time once per input
shape, and draws its noise with a seeded NumPy generator, so a decision is a single
executable launch (``benchmarks/throughput.py`` reports its rate).

Example:
    >>> policy = Policy(agent, state, num_candidates=1, seed=0)  # doctest: +SKIP
    >>> action = policy(observation)  # [obs_dim] -> [act_dim], in [-1, 1]
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ofql_jax.agents import Agent, AgentState


class Policy:
    """The one-step policy (``num_candidates = 1``) or the selection among N candidates.

    Candidates are scored by the target critics' min and one is drawn from
    ``softmax(q_temperature * Q)`` with the Gumbel-max trick; the initial noise is scaled by
    ``noise_temperature`` and the ``actor`` parameters are ``"online"`` or ``"ema"``. The
    same maths as ``agent.sample_actions`` but with NumPy randomness (same distribution, a
    different random stream). Accepts one state ``[obs_dim]`` or a batch
    ``[..., obs_dim]``; returns actions in [-1, 1].
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
    ):
        from ofql_jax.agents.base import select_actor

        if num_candidates > 1 and not agent.has_critic:
            raise ValueError(
                f"{agent.name} has no critic to score candidates: use num_candidates=1"
            )
        self.agent, self.num_candidates = agent, num_candidates
        self.noise_temperature = np.float32(noise_temperature)
        self.q_temperature = np.float32(q_temperature)
        self.policy_params = jax.device_put(select_actor(state, actor))
        self.critic_params = (
            jax.device_put(state.target_critic_params) if num_candidates > 1 else None
        )
        self.rng = np.random.default_rng(seed)
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _executable(self, obs: np.ndarray, noise: np.ndarray, gumbel: np.ndarray | None):
        if obs.shape not in self._compiled:
            if gumbel is None:
                fn = lambda p, o, n: self.agent.decide(p, {}, o, n)  # noqa: E731
                args = (self.policy_params, obs, noise)
            else:
                fn = self.agent.decide
                args = (self.policy_params, self.critic_params, obs, noise, gumbel,
                        self.q_temperature)  # fmt: skip
            self._compiled[obs.shape] = jax.jit(fn).lower(*args).compile()
        return self._compiled[obs.shape]

    def _scale(self, noise: np.ndarray) -> np.ndarray:
        from ofql_jax.agents.base import scale_noise

        return scale_noise(noise, self.noise_temperature, self.agent.scaled_noise_dim)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        batch = obs.shape[:-1]
        noise_dim = self.agent.noise_dim
        if self.num_candidates == 1:
            noise = self.rng.standard_normal(batch + (noise_dim,), dtype=np.float32)
            noise = self._scale(noise)
            return np.asarray(self._executable(obs, noise, None)(self.policy_params, obs, noise))
        n = self.num_candidates
        noise = self.rng.standard_normal(batch + (n, noise_dim), dtype=np.float32)
        noise = self._scale(noise)
        gumbel = self.rng.gumbel(size=batch + (n,)).astype(np.float32)
        run = self._executable(obs, noise, gumbel)
        return np.asarray(
            run(self.policy_params, self.critic_params, obs, noise, gumbel, self.q_temperature)
        )
