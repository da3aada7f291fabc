"""Load a finished (or running) training run from its workdir in one call, and act with it.

``load_run(workdir, step=None)`` reads ``config.json``, rebuilds the agent, restores the
stacked member states of a checkpoint and the acting record saved beside them
(``ofql_jax.evaluation.acting``), so no dataset is read. ``run.policy(seed=...)`` is the fast
``Policy`` of one trained seed in the environment's own units, with the run's evaluation
protocol unless told otherwise; ``run.evaluate()`` repeats the run's evaluation (same
environment seeds and action keys, so the same returns) or a variant of it.

Example:
    >>> run = load_run("runs/demo")  # doctest: +SKIP
    >>> env, policy = run.make_env(), run.policy(seed=0, num_candidates=1)  # doctest: +SKIP
    >>> obs, _ = env.reset(seed=0)  # doctest: +SKIP
    >>> obs, reward, terminated, truncated, _ = env.step(policy(obs))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ofql_jax.agents import AGENTS, Agent, AgentState
from ofql_jax.behavior.replica import load_dataset
from ofql_jax.behavior.sources import choose_data
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.config_fields import ADDED_FIELDS
from ofql_jax.core.errors import OFQLError
from ofql_jax.data import DatasetInfo
from ofql_jax.evaluation.acting import EnvPolicy, acting_record, info_from_record
from ofql_jax.evaluation.evaluator import (
    Evaluator,
    eval_env_kwargs,
    eval_sample_kwargs,
    normalized_score,
)
from ofql_jax.evaluation.policy import Policy
from ofql_jax.results.schema import EvalVariant, eval_variants, finite_or_none, load_results
from ofql_jax.training.experiment import build_agent, build_members, run_reference_scores
from ofql_jax.training.sweep import Member, apply_settings
from ofql_jax.training.trainer import init_states

POLICY_KWARGS = ("actor", "noise_temperature", "q_temperature")  # what ``Policy`` accepts


@dataclasses.dataclass
class LoadedRun:
    """A run's agent, the stacked states of one checkpoint and what acting needs.

    ``states`` has one leading row per member (seed, times sweep setting, in
    ``members`` order); ``info`` holds the environment (``info.make_env``), the
    observation space and the action scaler; ``metadata`` the checkpoint's
    ``evaluations`` and divergence flags; ``results`` the run's ``results.json`` in the
    current schema (``ofql_jax.results.schema.load_results``; ``None`` before it finished).
    """

    workdir: Path
    step: int
    config: ml_collections.ConfigDict
    agent: Agent
    states: AgentState
    members: list[Member]
    info: DatasetInfo
    metadata: dict[str, Any]
    results: dict[str, Any] | None

    @property
    def seeds(self) -> list[int]:
        """The seed value of every member, in ``states`` order."""
        return [m.seed for m in self.members]

    @property
    def env_id(self) -> str | None:
        return self.info.env_id

    @property
    def score_reference(self) -> tuple[float, float] | None:
        """``(random, expert)`` returns of D4RL's normalisation; ``None``: raw returns."""
        low, high = self.info.ref_min_score, self.info.ref_max_score
        return None if low is None or high is None else (low, high)

    def member_index(self, seed: int | None = None, member: str | None = None) -> int:
        """The row of a member: by its label (``"3"``, ``"eta=0.1/seed_3"``) or seed value;
        the first member when neither is given."""
        labels = [m.label for m in self.members]
        if member is not None:
            if member not in labels:
                raise OFQLError(f"No member {member!r} in {self.workdir}: choose one of {labels}.")
            return labels.index(member)
        if seed is None:
            return 0
        rows = [i for i, m in enumerate(self.members) if m.seed == seed]
        if not rows:
            raise OFQLError(
                f"{self.workdir} has no seed {seed}: choose one of {sorted(set(self.seeds))}."
            )
        if len(rows) > 1:
            raise OFQLError(
                f"Seed {seed} of {self.workdir} was trained under {len(rows)} sweep settings: "
                f"name the member instead, one of {[labels[i] for i in rows]}."
            )
        return rows[0]

    def state(self, seed: int | None = None, member: str | None = None) -> AgentState:
        """One member's agent state (unstacked)."""
        row = self.member_index(seed, member)
        return jax.tree.map(lambda x: x[row], self.states)

    def sample_settings(self, num_candidates: int) -> dict[str, Any]:
        """The protocol's selection settings for ``num_candidates`` (as evaluation used them:
        the one-step policy, N = 1, acts with noise x 1; agents without a critic always)."""
        kwargs = eval_sample_kwargs(self.config)
        for variant in eval_variants(self.config, self.agent.has_critic):
            if variant.candidates == num_candidates:
                return {**kwargs, **variant.overrides}
        return kwargs

    def policy(
        self,
        seed: int | None = None,
        num_candidates: int | None = None,
        *,
        member: str | None = None,
        noise_seed: int = 0,
        **overrides: Any,
    ) -> EnvPolicy:
        """The fast policy of one trained member, in the environment's units.

        ``num_candidates`` defaults to the run's protocol (``eval_candidates``; 1 for an
        agent without a critic); ``overrides`` may set ``actor`` (``"online"``/``"ema"``),
        ``noise_temperature`` and ``q_temperature``, else the protocol's are used.
        ``noise_seed`` seeds its random draws (host-side on a CPU, a device key elsewhere).
        """
        if num_candidates is None:
            num_candidates = self.config.eval_candidates if self.agent.has_critic else 1
        unknown = set(overrides) - set(POLICY_KWARGS)
        if unknown:
            raise OFQLError(
                f"Unknown policy settings {sorted(unknown)}: use {', '.join(POLICY_KWARGS)}."
            )
        settings = {k: v for k, v in self.sample_settings(num_candidates).items()
                    if k in POLICY_KWARGS}  # fmt: skip
        settings.update(overrides)
        state = self.state(seed, member)
        try:
            inner = Policy(self.agent, state, num_candidates, noise_seed, **settings)
        except ValueError as err:
            raise OFQLError(f"{err}.") from None
        return EnvPolicy(inner, self.info)

    def make_env(self, **kwargs: Any) -> gym.Env:
        """The evaluation environment (the run's env with its evaluation kwargs), e.g.
        ``make_env(render_mode="rgb_array")``."""
        return self.info.make_env(**{**eval_env_kwargs(self.info), **kwargs})

    def evaluate(
        self,
        seeds: Sequence[int] | None = None,
        episodes: int | None = None,
        num_candidates: int | None = None,
        *,
        max_envs: int | None = None,
        workers: int | None = None,
        progress: bool = False,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Evaluate members with the run's protocol at this checkpoint's step.

        By default every member, ``config.eval_episodes`` episodes each and every variant the
        run evaluated (N candidates, N = 1, the agent's options), so the returns equal the
        run's own evaluation at this step; ``seeds`` (seed values) restricts the members
        without changing anyone's returns, ``num_candidates`` evaluates that N only.
        ``overrides`` (``actor``, ``noise_temperature``, ``q_temperature``) replace those
        selection settings in every variant evaluated, the N = 1 variant's noise x 1 too.
        Returns ``{"step", "members", "variants": {name: {candidates, settings, scores,
        returns, episode_returns}}}``, scores normalised as in training, one entry per chosen
        member.

        Example (one candidate as the protocol draws its 50, i.e. without the critics' choice):
            >>> run.evaluate(num_candidates=1, noise_temperature=0.5)  # doctest: +SKIP
        """
        c = self.config
        unknown = set(overrides) - set(POLICY_KWARGS)
        if unknown:
            raise OFQLError(
                f"Unknown selection settings {sorted(unknown)}: use {', '.join(POLICY_KWARGS)}."
            )
        rows = list(range(len(self.members)))
        if seeds is not None:
            rows = [i for i, m in enumerate(self.members) if m.seed in set(seeds)]
            missing = sorted(set(seeds) - set(self.seeds))
            if missing:
                raise OFQLError(
                    f"{self.workdir} has no seed {missing[0]}: choose from "
                    f"{sorted(set(self.seeds))}."
                )
        episodes = episodes or c.eval_episodes or 10
        variants = eval_variants(c, self.agent.has_critic, self.agent.eval_options)
        if num_candidates is not None:
            if num_candidates > 1 and not self.agent.has_critic:
                raise OFQLError(
                    f"{c.algorithm} has no critic to score candidates: use --candidates=1."
                )
            settings = self.sample_settings(num_candidates)
            variants = [EvalVariant(f"N={num_candidates}", "", num_candidates, settings)]
        if overrides:
            variants = [dataclasses.replace(v, overrides={**v.overrides, **overrides})
                        for v in variants]  # fmt: skip
        diverged = self.metadata.get("diverged", {})
        mask = np.array([i in rows and m.label not in diverged for i, m in enumerate(self.members)])
        evaluator = Evaluator(
            self.agent, self.info, len(self.members), episodes,
            max_envs=max_envs or c.eval_max_envs,
            num_workers=c.eval_workers if workers is None else workers,
            sample_kwargs=eval_sample_kwargs(c),
        )  # fmt: skip
        out: dict[str, Any] = {
            "step": self.step,
            "members": [dataclasses.asdict(self.members[i]) for i in rows],
            "episodes": episodes,
            "variants": {},
        }
        try:
            for v in variants:
                returns = evaluator.evaluate(self.states, self.seeds, self.step, v.candidates,
                                             mask, sample_kwargs=v.overrides,
                                             progress=progress)  # fmt: skip
                scores = normalized_score(returns, self.score_reference)
                out["variants"][v.name] = {
                    "candidates": v.candidates,
                    "settings": {**eval_sample_kwargs(c), **v.overrides},
                    "scores": finite_or_none(scores[rows].mean(axis=1)),
                    "returns": finite_or_none(returns[rows].mean(axis=1)),
                    "episode_returns": [finite_or_none(r) for r in returns[rows]],
                }
        finally:
            evaluator.close()
        return out


def _read_config(workdir: Path) -> ml_collections.ConfigDict:
    path = workdir / "config.json"
    if not workdir.is_dir():
        raise OFQLError(f"{workdir} is not a directory: pass the --workdir of a training run.")
    if not path.exists():
        raise OFQLError(
            f"{workdir} holds no config.json, so it is not a training run's workdir: pass the "
            "--workdir given to python -m ofql_jax.main (a suite's runs are under "
            "<suite workdir>/programs/)."
        )
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OFQLError(f"{path} cannot be read as JSON ({err}): restore it from a copy.") from err
    config = ml_collections.ConfigDict({**ADDED_FIELDS, **saved})
    spec = AGENTS.get(config.get("algorithm"))
    if spec is not None:  # agent fields added after the run was made take their defaults
        defaults = spec.default_config().to_dict()
        missing = sorted(set(defaults) - set(config.agent.to_dict()))
        if missing:
            print(f"Note: {path} predates the agent fields {missing}; using their defaults.",
                  file=sys.stderr)  # fmt: skip
            config.agent = ml_collections.ConfigDict({**defaults, **config.agent.to_dict()})
    return config


def _fallback_info(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The acting record of a run saved before records existed, from its dataset (read once)."""
    print("This checkpoint predates acting records: reading its dataset once.", file=sys.stderr)
    choice = choose_data(config, None)
    _, info = load_dataset(choice.dataset_ids, config.reward_tune, False)
    return acting_record(info, *run_reference_scores(config, info))


def load_run(workdir: str | Path, step: int | None = None) -> LoadedRun:
    """Load the run in ``workdir`` at checkpoint ``step`` (default: the newest).

    Raises ``OFQLError`` (one sentence with the fix) for a directory that is not a run, a
    run without checkpoints, or a step that was not kept.
    """
    workdir = Path(workdir).expanduser()
    config = _read_config(workdir)
    ckpt_dir = workdir / "checkpoints"
    none_yet = OFQLError(
        f"{workdir} has no checkpoints yet: wait for the first one (every "
        f"{config.checkpoint_every} steps) or train longer."
    )
    if not ckpt_dir.is_dir():
        raise none_yet
    ckpt = Checkpointer(ckpt_dir, max(config.checkpoints_to_keep, 1))
    try:
        steps = ckpt.all_steps()
        if not steps:
            raise none_yet
        if step is None:
            step = steps[-1]
        elif step not in steps:
            raise OFQLError(f"{workdir} kept no checkpoint at step {step}: choose one of {steps}.")
        if config.algorithm not in AGENTS:
            raise OFQLError(
                f"{workdir} was trained with algorithm {config.algorithm!r}, which this "
                f"ofql-jax does not know: use one of {sorted(AGENTS)}."
            )
        settings, members = build_members(config)
        info = info_from_record(ckpt.restore_metadata(step).get("acting") or _fallback_info(config))
        try:
            agent = build_agent(config, info)
            like = jax.eval_shape(lambda: init_states(agent, [m.seed for m in members]))
        except (KeyError, TypeError, ValueError) as err:
            raise OFQLError(
                f"The agent of {workdir} cannot be rebuilt from its config.json "
                f"({type(err).__name__}: {err}): load it with the ofql-jax version that "
                "trained it."
            ) from err
        try:
            states, metadata = ckpt.restore(step, like=like, hparam_defaults=config.agent)
        except OFQLError as err:
            if "Structure mismatch" not in str(err.__cause__):
                raise
            raise OFQLError(
                f"The checkpoint at {ckpt.directory / str(step)} holds another agent state "
                "than this ofql-jax builds (an older version wrote it): load it with the "
                "ofql-jax version that trained it."
            ) from err
    finally:
        ckpt.close()
    states = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), states)
    # The swept values (those saved, and those of hparams a checkpoint does not hold, such
    # as grad_norm, which restore filled with config.agent's).
    states = apply_settings(states, members, settings)
    return LoadedRun(
        workdir, step, config, agent, states, members, info, metadata, load_results(workdir)
    )
