#!/usr/bin/env bash
# One ofql-jax program over several hosts under SLURM: one task (process) per host, each
# with all its GPUs. jax.distributed.initialize() reads the SLURM variables itself.
#   sbatch experiments/cluster/slurm.sh
#SBATCH --job-name=ofql-hopper
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --output=runs/slurm-%j.out
#SBATCH --requeue
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
# 2 hosts x 4 GPUs = 8 devices: the member count (seeds x sweep settings) must be a
# multiple of 8. A requeued job re-runs the same command and resumes from the checkpoint
# in the shared workdir.
srun python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium \
  --config.distributed=True --config.num_seeds=16 \
  --config.sweep.eta=0.01,0.1,0.3,0.5 \
  --workdir=runs/hopper-medium-eta
