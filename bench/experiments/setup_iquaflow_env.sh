#!/usr/bin/env bash
# Make the side environment that runs iquaflow 1.0.1's own code for the benchmark.
#
# iquaflow pins opencv-python==4.4.0.44 (no wheel for Python 3.11) and its code uses np.float,
# removed in numpy 1.24, so it cannot live in the project's environment. This venv has
# numpy 1.23.5, opencv-python-headless 4.8 (the newest built for numpy 1.x), CPU torch and
# torchvision (iquaflow.datasets imports torchvision), and iquaflow itself without its other
# dependencies (mlflow, sagemaker, geopandas ... are not needed by the dataset modifiers).
#
# usage: bash bench/experiments/setup_iquaflow_env.sh [VENV_DIR]   (default /tmp/iqf-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${1:-/tmp/iqf-venv}"
python3.11 -m venv "$venv"
"$venv/bin/pip" install -q -c "$here/constraints.txt" "numpy==1.23.5" \
    "opencv-python-headless<4.9" "scipy<1.12" pillow torch==2.13.0 torchvision==0.28.0
"$venv/bin/pip" install -q --no-deps iquaflow==1.0.1
echo "iquaflow environment ready: $venv/bin/python"
