"""One training run: ``setup`` builds it, ``Experiment.run`` trains it.

``setup(config, workdir)`` returns a frozen ``Setup``. ``Experiment(config, workdir).run()``
(what ``python -m ofql_jax.main`` does) loops ``trainer(states)`` (K updates per host call) up
to the next boundary, then does what is due: the divergence monitors, the log (TensorBoard,
W&B), the diagnostics, an evaluation, a checkpoint, and ``results.json`` at the end. A stop
request (SIGTERM, Ctrl-C) ends the loop after the chunk under way, abandoning an evaluation
under way within seconds; the checkpoint of that step remembers the evaluation, which the
resumed run does first. Process-wide switches belong to the entry point
(``ofql_jax.training.runtime.setup_process``), so one process can run many experiments.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import reduce
from operator import getitem
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.agents import AGENTS, Agent, AgentState
from ofql_jax.behavior.replica import load_dataset
from ofql_jax.behavior.sources import DataChoice, choose_data, prepare_data
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.config_fields import PROTOCOL_FIELDS
from ofql_jax.core.errors import OFQLError, StoppedError
from ofql_jax.core.stop_request import StopRequest
from ofql_jax.core.tasks import get_task
from ofql_jax.core.types import Transitions
from ofql_jax.data import DatasetInfo
from ofql_jax.evaluation.acting import acting_record
from ofql_jax.evaluation.evaluator import (
    EvaluationStopped,
    Evaluator,
    eval_sample_kwargs,
    normalized_score,
    reference_scores,
)
from ofql_jax.maths.diagnostics import (
    ValueBounds,
    above_data_best,
    outside_bounds,
    saturation_rate,
    value_bounds,
)
from ofql_jax.results.schema import (
    EvalVariant,
    RunResults,
    eval_variants,
    evaluation_entry,
    finite_or_none,
    summarize,
    transitions_hash,
    write_results,
)
from ofql_jax.results.wandb_writer import Reporters, WandbReporter
from ofql_jax.results.writers import NullReporter, Reporter, write_json_atomic
from ofql_jax.training.config_checks import check_config, compare_configs
from ofql_jax.training.parallel import check_divisible, make_mesh, replicated
from ofql_jax.training.runtime import compilation_cache_hits, matmul_precision, set_matmul_precision
from ofql_jax.training.sweep import Member, apply_settings, make_members, parse_sweep, setting_name
from ofql_jax.training.trainer import (
    MultiSeedTrainer,
    fetch,
    init_states,
    make_diagnostics,
    seed_values,
)


@dataclasses.dataclass(frozen=True)
class RunData:
    """The dataset of a run as trained on, and what is derived from it once."""

    choice: DataChoice  # where it came from and why
    transitions: Transitions  # host arrays (flattened, scaled, reward-tuned)
    info: DatasetInfo
    sha256: str  # transitions_hash(transitions)
    bounds: ValueBounds  # the values its rewards allow (the divergence monitor's bounds)
    saturation: float  # rate of dataset actions at the clip boundary


def load_run_data(config: ml_collections.ConfigDict, workdir: Path | None) -> RunData:
    """Choose the source (said on the console when ``workdir`` is given, on the main process),
    build a missing replica, load the transitions and derive the bounds."""
    choice = choose_data(config, workdir)
    if workdir is not None:
        tqdm.write(choice.describe())
    prepare_data(choice, config)
    transitions, info = load_dataset(choice.dataset_ids, config.reward_tune, config.download)
    if config.batch_size > info.num_transitions:
        raise OFQLError(
            f"batch_size {config.batch_size} is larger than the dataset "
            f"({info.num_transitions} transitions): lower --config.batch_size or use a "
            "larger dataset."
        )
    bounds = value_bounds(
        transitions.rewards, transitions.dones, info.episode_lengths,
        float(config.agent.get("discount", 0.99)),
    )  # fmt: skip
    return RunData(choice, transitions, info, transitions_hash(transitions), bounds,
                   saturation_rate(transitions.actions))  # fmt: skip


def build_members(config: ml_collections.ConfigDict) -> tuple[list[dict[str, float]], list[Member]]:
    """The sweep's settings and the members (setting x seed) they give."""
    settings = parse_sweep(config.sweep)
    return settings, make_members(seed_values(config.seed, config.num_seeds), settings)


def build_agent(config: ml_collections.ConfigDict, info: DatasetInfo) -> Agent:
    """The configured algorithm's agent for the dataset's observation and action sizes."""
    return AGENTS[config.algorithm].make(config.agent, info.obs_dim, info.act_dim, config.num_steps)


def run_reference_scores(
    config: ml_collections.ConfigDict, info: DatasetInfo
) -> tuple[tuple[float, float] | None, str]:
    """The score normalisation of a run: the task's D4RL table serves the task's own dataset,
    or any dataset with ``normalize_with_task``."""
    use_task_ref = not config.dataset_id or config.normalize_with_task
    return reference_scores(info, get_task(config.task).ref_scores, use_task_ref)


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a run is made of, built once by ``setup``; the loop changes none of it.

    ``states``, ``step`` and ``metadata`` are where the run starts: fresh states at step 0,
    or the newest checkpoint's states and its metadata (evaluations, divergence flags).
    """

    workdir: Path
    is_main: bool  # process 0: the only one that logs and writes files
    ckpt: Checkpointer
    run_data: RunData
    agent: Agent
    settings: list[dict[str, float]]
    members: list[Member]
    data: Transitions | None  # on the device(s); None in a multi-dataset program until it sets it
    data_where: jax.Array | None  # [members, 2] (first, size) of each member's dataset in ``data``
    states: AgentState
    step: int
    metadata: dict[str, Any]
    score_reference: tuple[float, float] | None
    score_normalization: str
    acting: dict[str, Any]  # what acting needs without the dataset (saved with checkpoints)
    variants: list[EvalVariant]
    writers: Reporter | Reporters | NullReporter
    evaluator: Evaluator | None  # None: eval_episodes is 0, or not process 0
    trainer: MultiSeedTrainer
    diagnostics: Callable[..., dict[str, jax.Array]] | None  # agent.diagnose over members
    q_policy_key: str | None  # diagnostic with Q of the members' own actions (value monitor)
    matmul_precision: str  # what the run's programs compile at
    cache_hits_before: int


def setup(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    allow_config_change: bool = False,
    joint: bool = False,
) -> Setup:
    """Build a run: check the config, open the workdir (refused if it holds a run of another
    config, unless allowed), load the data, build the agent and the member states (restored
    from the newest checkpoint if any), the writers and the evaluator.

    ``joint``: the run is one dataset of a multi-dataset program
    (``ofql_jax.training.multi_dataset``), which places the data and the states itself: no
    device copy of the data and no mesh here."""
    check_config(config)
    cache_hits_before = compilation_cache_hits()
    # The CLI and the suite set it at process start (runtime.setup_process); this covers a
    # library caller and a suite cell of another precision, before the run compiles
    # anything, and reads back what its programs get (results.json records that).
    set_matmul_precision(config.matmul_precision)
    workdir, is_main = Path(workdir), jax.process_index() == 0
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.json"
    if config_path.exists() and not allow_config_change:
        compare_configs(json.loads(config_path.read_text()), config.to_dict(), workdir)
    ckpt = Checkpointer(
        workdir / "checkpoints", config.checkpoints_to_keep, config.checkpoint_keep_period
    )
    run_data = load_run_data(config, workdir if is_main else None)
    agent = build_agent(config, run_data.info)
    settings, members = build_members(config)
    mesh, data = None, None  # a joint run's program places both
    if not joint:
        mesh = make_mesh(config.num_devices)
        check_divisible(len(members), mesh)
        mesh = mesh if mesh.size > 1 else None
        data = jax.device_put(run_data.transitions, replicated(mesh) if mesh is not None else None)
    states = apply_settings(init_states(agent, [m.seed for m in members], mesh), members, settings)
    latest = ckpt.latest_step()
    step, metadata = latest or 0, {}
    if latest is not None:
        configured = states.hparams
        states, metadata = ckpt.restore(step, like=states)
        # The config's hyperparameters, not the checkpoint's: equal on a plain resume, and
        # what --allow_config_change asked for (e.g. another eta from this step on).
        changed = [] if jax.process_count() > 1 else sorted(  # a host sees only its rows
            k for k in configured
            if not np.array_equal(np.asarray(configured[k]), np.asarray(states.hparams[k]))
        )  # fmt: skip
        states = states.replace(hparams=configured)
        if changed and is_main:
            tqdm.write(f"Continuing with the config's {', '.join(changed)} from step {step}.")
        if mesh is None:
            # Orbax returns committed arrays, which give the training chunk another jit
            # signature than fresh states and so miss the compilation cache.
            states = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), states)
        if is_main:
            tqdm.write(f"Resuming from {ckpt.directory / str(step)} (step {step}).")
    if is_main:
        write_json_atomic(config_path, config.to_dict())
    ref, ref_source = run_reference_scores(config, run_data.info)
    writers, evaluator = NullReporter(), None
    if is_main:  # TensorBoard writers for every member and group mean, and W&B when configured
        runs, groups = [m.run_name for m in members], [m.setting for m in members]
        names = [setting_name(x) for x in settings]
        writers = Reporter(workdir, runs, groups, names)
    try:  # a refusal leaves no TensorBoard writer threads behind
        if is_main and config.wandb_project:
            writers = Reporters(writers, WandbReporter(config, workdir, runs, groups, names))
        writers.text("data/source", run_data.choice.describe())
        if is_main and config.eval_episodes > 0:
            evaluator = Evaluator(
                agent, run_data.info, len(members), config.eval_episodes,
                max_envs=config.eval_max_envs, num_workers=config.eval_workers,
                sample_kwargs=eval_sample_kwargs(config),
            )  # fmt: skip
    except BaseException:
        writers.close()
        raise
    return Setup(
        workdir=workdir, is_main=is_main, ckpt=ckpt, run_data=run_data, agent=agent,
        settings=settings, members=members, data=data, data_where=None, states=states, step=step,
        metadata=metadata, score_reference=ref, score_normalization=ref_source,
        acting=acting_record(run_data.info, ref, ref_source),
        variants=eval_variants(config, agent.has_critic, agent.eval_options),
        writers=writers, evaluator=evaluator,
        trainer=MultiSeedTrainer(agent, config.batch_size, mesh, config.seeds_per_group),
        diagnostics=make_diagnostics(agent) if agent.diagnose is not None else None,
        q_policy_key=AGENTS[config.algorithm].q_policy_key,
        matmul_precision=matmul_precision(), cache_hits_before=cache_hits_before,
    )  # fmt: skip


@dataclasses.dataclass
class Progress:
    """What the loop carries besides the states, and saves with every checkpoint.

    ``abandoned`` holds the diagnostics of the step whose evaluation a stop request
    abandoned; the resumed run evaluates that step first, with them.
    """

    step: int = 0
    evaluations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    diverged: dict[str, int] = dataclasses.field(default_factory=dict)  # non-finite: step
    value_diverged: dict[str, int] = dataclasses.field(default_factory=dict)  # Q out of bounds
    abandoned: dict[str, Any] | None = None

    @classmethod
    def from_metadata(cls, step: int, meta: dict[str, Any]) -> Progress:
        """The progress saved in a checkpoint's metadata (empty: a fresh run)."""
        return cls(
            step, list(meta.get("evaluations", [])), dict(meta.get("diverged", {})),
            dict(meta.get("value_diverged", {})), meta.get("abandoned_evaluation"),
        )  # fmt: skip

    def metadata(self, acting: dict[str, Any]) -> dict[str, Any]:
        meta = {"evaluations": self.evaluations, "diverged": self.diverged,
                "value_diverged": self.value_diverged, "acting": acting}  # fmt: skip
        if self.abandoned is not None:
            meta["abandoned_evaluation"] = self.abandoned
        return meta


def _next_boundary(step: int, config: ml_collections.ConfigDict) -> int:
    """Chunks end at absolute multiples of K, eval_every, checkpoint_every, and at num_steps,
    so a resumed run executes exactly the same chunks."""
    candidates = [config.num_steps]
    for period in (config.steps_per_call, config.eval_every, config.checkpoint_every):
        if period > 0:
            candidates.append((step // period + 1) * period)
    return min(candidates)


def _member_name(label: str) -> str:
    """``Seed 3`` for a plain run's member, the label itself (``eta=0.1/seed_3``) in a sweep."""
    return f"Seed {label}" if "/" not in label else label


class Experiment:
    """One run: its ``setup``, then ``run()``, the training loop with its periodic actions.

    Members are seeds, times sweep settings when ``config.sweep`` lists values, split over
    ``config.num_devices`` devices. Between construction and ``run()`` the ``states`` may be
    inspected or changed.
    """

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | Path,
                 allow_config_change: bool = False, joint: bool = False):  # fmt: skip
        self.config = config
        self.setup = setup(config, workdir, allow_config_change, joint)
        self.states = self.setup.states
        self.progress = Progress.from_metadata(self.setup.step, self.setup.metadata)
        self.last_diagnostics: dict[str, np.ndarray] = {}
        if self.progress.abandoned is not None:
            saved = self.progress.abandoned["diagnostics"]  # finite_or_none lists
            self.last_diagnostics = {k: np.array([np.nan if x is None else x for x in v])
                                     for k, v in saved.items()}  # fmt: skip
        self.chunk_rates: list[float] = []  # updates/s of each chunk this process trained
        self.last_rate, self.last_loss = float("nan"), float("nan")
        self.program: dict[str, Any] | None = None  # the multi-dataset program it trains in
        self.noted_above_data: set[str] = set()  # members told their Q passed the data's best

    def run(self, on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Train to ``num_steps``, write results.json and return it; ``on_chunk(step)`` is
        called after every chunk (the suite's progress display). A stop request saves a
        checkpoint and raises StoppedError (see the module docstring)."""
        c, s, p = self.config, self.setup, self.progress
        bar = tqdm(total=c.num_steps, initial=p.step, unit="step",
                   disable=not (c.progress and s.is_main), dynamic_ncols=True)  # fmt: skip
        try:
            with StopRequest("after this chunk (an evaluation under way is abandoned)") as stop:
                self.resume_evaluation(stop)
                self.stop_if_requested(stop)
                while p.step < c.num_steps:
                    states, metrics, step = self.train_chunk()  # trainer(states) to a boundary
                    self.keep_chunk(states, metrics, step)
                    bar.update(p.step - bar.n)
                    bar.set_postfix_str(self._postfix())
                    if on_chunk is not None:
                        on_chunk(p.step)
                    self.periodic(stop)
                    self.stop_if_requested(stop)
            return self.finish()
        finally:
            bar.close()
            self.close()

    def resume_evaluation(self, stop: StopRequest) -> None:
        """The evaluation a stop abandoned (saved in the checkpoint), first of all."""
        if self.progress.abandoned is None:
            return
        if self.setup.is_main:
            tqdm.write(f"Evaluating step {self.progress.step} first: a stop interrupted it.")
        self.evaluate(stop)

    def keep_chunk(self, states: AgentState, metrics: dict[str, Any], step: int) -> None:
        """Take a trained chunk's states and metrics: the finiteness check (which may halt
        before keeping them), the log, the diagnostics and the value monitor."""
        self.check_finite(metrics.pop("finite"), step)
        self.states, self.progress.step = states, step
        self.log(metrics)
        if self.setup.diagnostics is not None:
            self.diagnose()

    def periodic(self, stop: StopRequest) -> None:
        """What is due at this step. Evaluation precedes its checkpoint, so a resumed run
        repeats none that finished, and every process reaches the same decision."""
        c = self.config
        if c.eval_episodes and self.due(c.eval_every):
            self.evaluate(stop)
        if self.due(c.checkpoint_every) or stop.requested:
            self.save()

    def finish(self) -> dict[str, Any]:
        """Write results.json (process 0) and return it."""
        results = self.results()
        if self.setup.is_main:
            write_results(self.setup.workdir, results)
        return results.to_json()

    def train_chunk(self) -> tuple[AgentState, dict[str, Any], int]:
        """The updates up to the next boundary: new states (not yet kept), the chunk's
        metrics with its speed (``perf/*``) and the step reached."""
        s, step = self.setup, self.progress.step
        num_updates = _next_boundary(step, self.config) - step
        states, metrics, rate = s.trainer.timed(self.states, s.data, num_updates, s.data_where)
        self.chunk_rates.append(rate)
        metrics["perf/updates_per_second"] = rate
        metrics["perf/seed_updates_per_second"] = rate * len(s.members)
        return states, metrics, step + num_updates

    def check_finite(self, finite: np.ndarray, step: int) -> None:
        """Mark newly non-finite members; with halt_on_divergence stop before keeping the chunk."""
        for member, ok in zip(self.setup.members, finite, strict=True):
            if ok or member.label in self.progress.diverged:
                continue
            name = _member_name(member.label)
            cause = f"{name} diverged (non-finite loss or parameters) by step {step}"
            self._diverged(
                self.progress.diverged, member.label, step, cause,
                "lower the learning rates or eta, or unset --config.halt_on_divergence to keep "
                "the other seeds going.",
                f"{cause}; it is excluded from the mean and from evaluation, the other seeds go "
                "on.",
            )  # fmt: skip

    def _diverged(self, flags: dict[str, int], label: str, step: int, cause: str, fix: str,
                  warn: str) -> None:  # fmt: skip
        """Flag ``label`` at ``step`` and print ``warn``; with halt_on_divergence raise instead
        (its ``cause``, what the run leaves behind, the ``fix``)."""
        if self.config.halt_on_divergence:
            last = self.setup.ckpt.latest_step()
            kept = "no checkpoint was written"
            if last:
                kept = f"the last checkpoint (step {last}) is intact"
            raise OFQLError(
                f"{cause} and halt_on_divergence is set, so the run stopped ({kept}): {fix}"
            )
        flags[label] = step
        if self.setup.is_main:
            tqdm.write(warn)

    def log(self, metrics: dict[str, Any]) -> None:
        """The chunk's metrics to TensorBoard (and W&B); its speed and loss to the console."""
        self.setup.writers.scalars(self.progress.step, metrics)
        loss = np.asarray(metrics.get("critic/loss", metrics.get("actor/loss")))
        self.last_rate = metrics["perf/updates_per_second"]
        self.last_loss = (
            float(loss[np.isfinite(loss)].mean()) if np.isfinite(loss).any() else np.nan
        )

    def diagnose(self) -> dict[str, np.ndarray]:
        """``agent.diagnose`` of every member on a fresh batch, logged as ``diag/*``, then
        the value monitor."""
        s, step = self.setup, self.progress.step
        seeds = jnp.asarray([m.seed for m in s.members], jnp.uint32)
        diag = fetch(s.diagnostics(self.states, s.data, seeds, jnp.uint32(step), s.data_where))
        bounds = s.run_data.bounds
        extra = {"diag/q_upper_bound": bounds.upper, "diag/best_data_return": bounds.best_return}
        s.writers.scalars(step, {**diag, **extra})
        self.last_diagnostics = diag
        if s.q_policy_key in diag:
            self.check_values(diag[s.q_policy_key], step)
        return diag

    def check_values(self, q_policy: np.ndarray, step: int) -> None:
        """Flag members whose Q of their own actions left [lower, upper] (value divergence);
        note once per member (and process) when it passed the data's best return first."""
        b, p = self.setup.run_data.bounds, self.progress
        above = above_data_best(q_policy, b)
        for member, q, flagged in zip(self.setup.members, q_policy, above, strict=True):
            label = member.label
            if not flagged or label in self.noted_above_data or label in p.diverged:
                continue
            self.noted_above_data.add(label)
            if self.setup.is_main:
                tqdm.write(
                    f"Note: {_member_name(label)}'s critics value its own actions at Q = "
                    f"{q:.4g} at step {step}, above the best discounted return from any state "
                    f"of the data ({b.best_return:.4g}): they may be extrapolating off the "
                    "data (on the medium-expert replicas this came before collapses at high "
                    "eta); watch its scores, or lower eta."
                )
        flags = outside_bounds(q_policy, b)
        for member, q, flagged in zip(self.setup.members, q_policy, flags, strict=True):
            label = member.label
            if not flagged or label in p.value_diverged or label in p.diverged:
                continue
            cause = (
                f"{_member_name(label)} diverged by step {step}: its critics value its own "
                f"actions at Q = {q:.4g}, outside the bounds [{b.lower:.4g}, {b.upper:.4g}] that "
                f"the dataset's rewards allow (best discounted return in the data "
                f"{b.best_return:.4g})"
            )
            self._diverged(
                p.value_diverged, label, step, f"{cause},",
                "lower eta or the learning rates (see docs/algorithm.md), or unset "
                "--config.halt_on_divergence.",
                f"Warning: {cause}; it goes on and is evaluated, and results.json lists it under "
                "value_diverged_seeds.",
            )  # fmt: skip

    def evaluate(self, stop: StopRequest) -> None:
        """Evaluate every healthy member in every variant; a diverged member scores None. Runs
        on every process (multi-host runs gather the states), the episodes on process 0 only.
        An evaluation a stop request abandons records nothing but ``progress.abandoned``,
        which the checkpoint keeps."""
        s, p = self.setup, self.progress
        states = self.states if jax.process_count() == 1 else fetch(self.states)
        if s.evaluator is None:
            p.abandoned = None
            return
        healthy = np.array([m.label not in p.diverged for m in s.members])
        values = [m.seed for m in s.members]
        bar = f"evaluation at step {p.step}" if self.config.progress else False
        scores, returns, tb = {}, {}, {}
        try:
            for v in s.variants:
                got = s.evaluator.evaluate(states, values, p.step, v.candidates, healthy,
                                           sample_kwargs=v.overrides, progress=bar,
                                           should_stop=lambda: stop.requested)  # fmt: skip
                scores[v.name] = normalized_score(got, s.score_reference).mean(axis=1)
                returns[v.name] = got.mean(axis=1)
                tb[f"eval/score{v.suffix}"] = scores[v.name]
                tb[f"eval/return{v.suffix}"] = returns[v.name]
        except EvaluationStopped:
            diagnostics = {k: finite_or_none(v) for k, v in self.last_diagnostics.items()}
            p.abandoned = {"diagnostics": diagnostics}
            return
        p.abandoned = None
        entry = evaluation_entry(p.step, self.last_diagnostics, s.variants, scores, returns)
        s.writers.scalars(p.step, tb)
        p.evaluations.append(entry)
        alive = [x for x in entry["scores"] if x is not None]
        if alive:
            tqdm.write(
                f"step {p.step}: score {np.mean(alive):.1f} +- {np.std(alive):.1f} "
                f"(N={entry['candidates']}, {len(alive)} seeds)"
            )

    def due(self, period: int) -> bool:
        step = self.progress.step
        return (period > 0 and step % period == 0) or step == self.config.num_steps

    def save(self) -> None:
        meta = self.progress.metadata(self.setup.acting)
        self.setup.ckpt.save(self.progress.step, self.states, meta)

    def stop_if_requested(self, stop: StopRequest) -> None:
        """Raise StoppedError when a stop was requested and work is left (the checkpoint of
        this step exists by now)."""
        p = self.progress
        if not stop.requested or (p.step >= self.config.num_steps and p.abandoned is None):
            return
        what = ", abandoning its evaluation," if p.abandoned is not None else ""
        raise StoppedError(
            f"Stopped by {stop.name} at step {p.step}{what} after saving a checkpoint: "
            "re-run the same command to resume."
        )

    def _postfix(self) -> str:
        kind = "critic" if self.setup.agent.has_critic else "loss"
        text = f"{self.last_rate:.0f} upd/s, {kind} {self.last_loss:.3g}"
        q = self.last_diagnostics.get(self.setup.q_policy_key)
        if q is not None and np.isfinite(q).any():
            text += f", Q max {np.nanmax(q):.0f} (bound {self.setup.run_data.bounds.upper:.0f})"
        return text

    def _eval_settings(self) -> dict[str, Any]:
        """What the reported evaluation actually did (an agent without a critic acts with its
        own action, N = 1 and noise x 1, whatever the protocol's candidate settings)."""
        c, critic, main = self.config, self.setup.agent.has_critic, self.setup.variants[0]
        settings = {**eval_sample_kwargs(c), **main.overrides}
        if not critic:
            settings["q_temperature"] = None  # no candidates to weigh
        one_step = c.eval_one_step and critic and main.candidates != 1
        one = c.eval_one_candidate and critic and main.candidates != 1
        noise = settings["noise_temperature"]
        return {
            **settings,
            "candidates": main.candidates,
            "episodes_per_seed": c.eval_episodes,
            "one_step": "N = 1, noise x 1, same actor" if one_step else None,
            "one_candidate": f"N = 1, noise x {noise:g}, same actor" if one else None,
            "max_envs": c.eval_max_envs,
        }

    def results(self) -> RunResults:
        c, s, p = self.config, self.setup, self.progress
        final = p.evaluations[-1] if p.evaluations else {}
        labels, suffixes = [m.label for m in s.members], [v.suffix for v in s.variants]

        def summary(chosen: list[int]) -> dict[str, Any]:
            return summarize(final, chosen, labels, p.diverged, suffixes)

        sweep = s.settings != [{}]  # then one summary per setting, members in order
        settings = [
            {"hparams": setting, "name": setting_name(setting),
             **summary([i for i, m in enumerate(s.members) if m.setting == k])}
            for k, setting in enumerate(s.settings)
        ]  # fmt: skip
        rate = float(np.median(self.chunk_rates)) if self.chunk_rates else None
        trained = self.program["members"] if self.program else len(s.members)
        return RunResults(
            algorithm=c.algorithm,
            task=c.task,
            dataset_id=",".join(s.run_data.choice.dataset_ids),
            data_source=s.run_data.choice.source,
            data_source_reason=s.run_data.choice.reason,
            dataset_sha256=s.run_data.sha256,
            env_id=s.run_data.info.env_id,
            acting=s.acting,
            num_seeds=c.num_seeds,
            seeds=seed_values(c.seed, c.num_seeds),
            steps=p.step,
            score_normalization=s.score_normalization,
            protocol=c.protocol,
            protocol_settings={f: reduce(getitem, f.split("."), c) for f in PROTOCOL_FIELDS},
            eval_candidates=s.variants[0].candidates,
            eval_settings=self._eval_settings(),
            diverged_seeds=dict(p.diverged),
            value_diverged_seeds=dict(p.value_diverged),
            value_bounds=s.run_data.bounds.to_dict(),
            data_saturation=s.run_data.saturation,
            diagnostics={k: finite_or_none(v) for k, v in self.last_diagnostics.items()},
            updates_per_second=rate,
            seed_updates_per_second=rate * trained if rate else None,
            compile_seconds=s.trainer.compile_seconds,
            compilation_cache_hits=compilation_cache_hits() - s.cache_hits_before,
            matmul_precision=s.matmul_precision,
            summaries=summary(list(range(len(s.members)))),
            members=[dataclasses.asdict(m) for m in s.members] if sweep else None,
            settings=settings if sweep else None,
            evaluations=p.evaluations,
            config=c.to_dict(),
            program=self.program,
        )

    def close(self) -> None:
        self.setup.writers.close()
        if self.setup.evaluator is not None:
            self.setup.evaluator.close()


def run(
    config: ml_collections.ConfigDict, workdir: str | Path, allow_config_change: bool = False
) -> dict[str, Any]:
    """Train ``config.num_seeds`` seeds of ``config.algorithm`` and write everything to ``workdir``.

    Resumes from ``<workdir>/checkpoints`` when present; a workdir whose saved config
    differs is refused unless ``allow_config_change``. Returns the results dictionary
    also written to ``<workdir>/results.json``.
    """
    return Experiment(config, workdir, allow_config_change).run()


def move_aside(workdir: str | Path) -> Path | None:
    """Rename an existing, non-empty ``workdir`` to ``<workdir>.old-<n>``; never deletes."""
    workdir = Path(workdir)
    if not workdir.exists() or not any(workdir.iterdir()):
        return None
    n = 1
    while (target := workdir.with_name(f"{workdir.name}.old-{n}")).exists():
        n += 1
    workdir.rename(target)
    return target
