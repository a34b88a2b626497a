#!/usr/bin/env bash
# Installs the workspace packages this env needs from the checkout (see envs/README.md).
set -euo pipefail
python -m pip install --no-deps packages/core packages/vse
