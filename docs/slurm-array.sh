#!/usr/bin/env bash
# One shard of an experiment grid per SLURM array task (docs/cluster.md).
#
#   sbatch --array=0-7 docs/slurm-array.sh                                   # table2-main, preset cpu, 8 shards
#   EXPERIMENT=experiments/table3-ablation.yaml PRESET=cpu sbatch --array=0-15 docs/slurm-array.sh
#   # then, when every task has ended (or at any time: the report shows what is on disk):
#   sbatch --dependency=afterany:<job id> --wrap 'npx longner report experiments/table2-main.yaml --preset cpu'
#
# The repository (installed with `npm install`) and the runs folder must be on a file system every node
# sees. Each task computes the same grid from the experiment file and runs the runs whose index in
# run-id order is its task id modulo the number of tasks; finished runs are skipped, so a requeued or
# resubmitted task only does what is left (--resume continues a run killed mid-training).
#SBATCH --job-name=longner
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=2-00:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

EXPERIMENT="${EXPERIMENT:-experiments/table2-main.yaml}"
PRESET="${PRESET:-cpu}"
# The number of shards is the size of the array (0-7 -> 8); SHARDS overrides it.
SHARDS="${SHARDS:-${SLURM_ARRAY_TASK_COUNT:-1}}"
SHARD="${SLURM_ARRAY_TASK_ID:-0}"

cd "${SLURM_SUBMIT_DIR:-.}"
# Runs of every shard land in one folder, which `longner report` reads.
export LONGNER_RUNS_DIR="${LONGNER_RUNS_DIR:-$PWD/runs}"
# Where the dataset files are when datasets/ is empty on the nodes (optional).
# export LONGNER_DATA_MIRROR=/shared/longner-datasets

echo "shard $SHARD/$SHARDS of $EXPERIMENT (preset $PRESET) on $(hostname), runs in $LONGNER_RUNS_DIR"
# Exit status 1 means some run failed (its result.json says why); OOM runs are results, not failures.
npx longner run "$EXPERIMENT" --preset "$PRESET" --shard "$SHARD/$SHARDS" --resume
