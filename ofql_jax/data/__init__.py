"""Offline datasets: Minari -> flat float32 ``Transitions`` plus what evaluation needs."""

from ofql_jax.data.minari_data import (
    MINARI_SERVER,
    ActionScaler,
    DatasetInfo,
    check_spaces,
    datasets_root,
    ensure_local,
    episodes_to_transitions,
    flatten_observation,
    is_local,
    load_minari,
    observation_dim,
    server_reachable,
    tune_rewards,
)

__all__ = [
    "MINARI_SERVER",
    "ActionScaler",
    "DatasetInfo",
    "check_spaces",
    "datasets_root",
    "ensure_local",
    "episodes_to_transitions",
    "flatten_observation",
    "is_local",
    "load_minari",
    "observation_dim",
    "server_reachable",
    "tune_rewards",
]
