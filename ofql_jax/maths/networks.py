"""Pure Flax modules: the mean-velocity policy ``u_theta(z, r, t | s)`` and twin critics.

Sizes follow DQL (3 x 256, Mish). Initialisation defaults to PyTorch's
``nn.Linear`` rule (weights and biases uniform in +-1/sqrt(fan_in)), since the
paper inherits DQL's PyTorch code; ``init_scheme="lecun"`` gives Flax's default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_jvp
def mish(x: jax.Array) -> jax.Array:
    """Mish, ``x tanh(softplus(x))``, with one exp instead of exp, log1p and tanh.

    ``tanh(log(1 + n)) = n (n + 2) / (n (n + 2) + 2)`` with ``n = e^x``; equal to
    ``jax.nn.mish`` to float32 rounding (tests/test_networks.py) and about 3x cheaper on
    CPU, where activations of 256-wide layers cost as much as the matmuls. Its derivative is
    written out (``_mish_jvp``): autodiff of ``m / (m + 2)`` subtracts two numbers near 2,
    whose rounding error, times x, made the critics' action gradient in float32 on XLA's CPU
    backend about 3x too large (docs/algorithm.md, section 9).

    Example:
        >>> round(float(mish(jnp.array(1.0))), 6)
        0.865098
    """
    return _mish_parts(x)[0]


def _mish_parts(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mish's value with the ``n = e^x`` and ``m = n (n + 2)`` it was computed from."""
    n = jnp.exp(jnp.minimum(x, 20.0))  # beyond 20, tanh(softplus(x)) is 1 in float32
    m = n * (n + 2.0)
    return jnp.where(x > 20.0, x, x * m / (m + 2.0)), n, m


@mish.defjvp
def _mish_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    """``d/dx x T = T + x dT/dx`` with ``T = m / (m + 2)`` and ``dT/dx = 4 n (n + 1) /
    (m + 2)^2``: a sum of two non-negative terms for x >= 0, so no cancellation."""
    (x,), (dx,) = primals, tangents
    y, n, m = _mish_parts(x)
    d = m + 2.0
    slope = m / d + x * (4.0 * n * (n + 1.0) / d) / d
    return y, jnp.where(x > 20.0, 1.0, slope) * dx


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "mish": mish,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
}


def _fan_in_uniform(fan_in: int) -> Callable:
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


class Dense(nn.Module):
    """Dense layer with PyTorch-default (``init_scheme="pytorch"``) or LeCun-normal init.

    ``matmul_dtype="bfloat16"`` casts the matmul inputs to bf16 and accumulates in float32
    (parameters, biases and activations stay float32).
    """

    features: int
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        if self.init_scheme == "pytorch":
            kernel_init = bias_init = _fan_in_uniform(fan_in)
        elif self.init_scheme == "lecun":
            kernel_init, bias_init = nn.initializers.lecun_normal(), nn.initializers.zeros
        else:
            raise ValueError(f"unknown init {self.init_scheme!r}; use 'pytorch' or 'lecun'")
        kernel = self.param("kernel", kernel_init, (fan_in, self.features))
        bias = self.param("bias", bias_init, (self.features,))
        if self.matmul_dtype == "float32":
            return x @ kernel + bias
        dtype = jnp.dtype(self.matmul_dtype)
        y = jnp.dot(x.astype(dtype), kernel.astype(dtype), preferred_element_type=jnp.float32)
        return y + bias


class MLP(nn.Module):
    """``len(hidden_dims)`` hidden layers with ``activation``, then a linear output."""

    hidden_dims: Sequence[int]
    out_dim: int
    activation: str = "mish"
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden_dims:
            x = act(Dense(width, self.init_scheme, self.matmul_dtype)(x))
        return Dense(self.out_dim, self.init_scheme, self.matmul_dtype)(x)


def sinusoidal_embedding(x: jax.Array, dim: int) -> jax.Array:
    """DQL's ``SinusoidalPosEmb``: ``[sin(x w), cos(x w)]`` with ``w_k = 10000^(-k/(dim/2-1))``.

    Example:
        >>> sinusoidal_embedding(jnp.zeros(3), 16).shape
        (3, 16)
    """
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) / (half - 1) * jnp.arange(half, dtype=jnp.float32))
    angles = x[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TimeEmbedding(nn.Module):
    """DQL's time MLP: sinusoidal(dim) -> Dense(2 dim) -> Mish -> Dense(dim).

    ``scale`` maps times in [0, 1] to the embedding's range (DQL fed integer
    steps 0..T-1; the OFQL scale is unknown; 1 is this project's default because
    scales of 100 and 1000 made the JVP target diverge, see benchmarks/time_scale_probe.py).
    """

    dim: int = 16
    scale: float = 1.0
    activation: str = "mish"
    init_scheme: str = "pytorch"

    @nn.compact
    def __call__(self, time: jax.Array) -> jax.Array:
        h = sinusoidal_embedding(time * self.scale, self.dim)
        h = ACTIVATIONS[self.activation](Dense(2 * self.dim, self.init_scheme)(h))
        return Dense(self.dim, self.init_scheme)(h)


class MeanVelocityField(nn.Module):
    """The OFQL policy network ``u_theta(z, r, t | s)``.

    Input ``concat[z, emb(t), emb(second), s]`` with ``second = r`` (default) or
    ``t - r``; both embeddings have their own weights. At ``r = t`` the output is
    the instantaneous velocity; ``e - u(e, 0, 1 | s)`` is a one-step action.

    Example:
        >>> net = MeanVelocityField(action_dim=3)
        >>> z, s, t = jnp.zeros((5, 3)), jnp.zeros((5, 11)), jnp.ones(5)
        >>> params = net.init(jax.random.key(0), z, t * 0, t, s)
        >>> net.apply(params, z, t * 0, t, s).shape
        (5, 3)
    """

    action_dim: int
    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    time_dim: int = 16
    time_scale: float = 1.0
    second_time: str = "r"  # "r" | "t_minus_r"
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"  # the trunk's matmuls; the time embeddings stay float32

    @nn.compact
    def __call__(self, z: jax.Array, r: jax.Array, t: jax.Array, obs: jax.Array) -> jax.Array:
        if self.second_time == "r":
            second = r
        elif self.second_time == "t_minus_r":
            second = t - r
        else:
            raise ValueError(f"unknown second_time {self.second_time!r}; use 'r' or 't_minus_r'")
        embed = lambda name: TimeEmbedding(  # noqa: E731
            self.time_dim, self.time_scale, self.activation, self.init_scheme, name=name
        )
        x = jnp.concatenate([z, embed("t_embedding")(t), embed("r_embedding")(second), obs], -1)
        mlp = MLP(
            self.hidden_dims,
            self.action_dim,
            self.activation,
            self.init_scheme,
            self.matmul_dtype,
            name="mlp",
        )
        return mlp(x)


class Critic(nn.Module):
    """One Q head: ``concat[s, a]`` -> MLP -> scalar."""

    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, obs: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, actions], -1)
        mlp = MLP(self.hidden_dims, 1, self.activation, self.init_scheme, self.matmul_dtype)
        return mlp(x)[..., 0]


class CriticEnsemble(nn.Module):
    """``num_heads`` independent critics as one batched module; output ``[num_heads, ...]``.

    Example:
        >>> critics = CriticEnsemble()
        >>> s, a = jnp.zeros((5, 11)), jnp.zeros((5, 3))
        >>> params = critics.init(jax.random.key(0), s, a)
        >>> critics.apply(params, s, a).shape
        (2, 5)
    """

    num_heads: int = 2
    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, obs: jax.Array, actions: jax.Array) -> jax.Array:
        heads = nn.vmap(
            Critic,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_heads,
        )
        critic = heads(
            self.hidden_dims, self.activation, self.init_scheme, self.matmul_dtype, name="heads"
        )
        return critic(obs, actions)
