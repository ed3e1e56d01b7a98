#!/usr/bin/env bash
# Set up hark on a fresh Debian/Ubuntu machine with Python >= 3.11.
#   scripts/setup.sh        runtime: system audio libraries + .venv with hark
#   scripts/setup.sh dev    everything the test suite needs: TensorFlow/tf2onnx (export, train),
#                           PulseAudio (virtual microphone), espeak-ng/flite (synthetic speech), tmux,
#                           chromium + chromium-driver (the browser page test)
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
case "$mode" in run|dev) ;; *) echo "usage: scripts/setup.sh [run|dev]" >&2; exit 2 ;; esac

pkgs=(libportaudio2 libsndfile1)
if [ "$mode" = dev ]; then
  pkgs+=(pulseaudio pulseaudio-utils libasound2-plugins espeak-ng flite sox tmux)
  pkgs+=(chromium chromium-driver)  # the browser page test (tests/ui/test_browser.py)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing system packages: ${missing[*]}" >&2
    # A fresh machine often runs its own apt first (unattended-upgrades, cloud-init): wait for it
    # instead of failing at once. fuser says whether a lock is held; apt-get itself waits up to
    # 10 minutes for the dpkg lock (DPkg::Lock::Timeout), which also covers the race after it.
    locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
           /var/cache/apt/archives/lock)
    if command -v fuser >/dev/null 2>&1; then
      waited=0
      while $sudo fuser "${locks[@]}" >/dev/null 2>&1 && [ "$waited" -lt 600 ]; do
        [ "$waited" -eq 0 ] && echo "setup: waiting for another apt/dpkg to finish..." >&2
        sleep 2; waited=$((waited + 2))
      done
    else
      echo "setup: (if another apt/dpkg is running, apt-get waits up to 10 minutes for it)" >&2
    fi
    apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update -qq
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages: ${missing[*]}" >&2; exit 1
  fi
fi

py=${PYTHON:-python3}
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$mode" = dev ]; then
  "${pip[@]}" -e ".[dev]"
  # tf_keras (for legacy Keras 2 .h5 files) requires the `tensorflow` distribution, which would
  # pull a second TensorFlow next to tensorflow-cpu: install it without dependencies, matched.
  tfv=$(.venv/bin/python -c 'import importlib.metadata as m; print(".".join(m.version("tensorflow-cpu").split(".")[:2]))')
  .venv/bin/python -c 'import tf_keras' 2>/dev/null || "${pip[@]}" --no-deps "tf_keras~=${tfv}.0"
else
  "${pip[@]}" -e .
fi
# silero-vad (the optional `--vad silero` gate) declares torch as a requirement, but hark only opens
# the ONNX file its wheel ships, with onnxruntime: install it without dependencies.
.venv/bin/python -c 'import importlib.metadata as m; m.distribution("silero-vad")' 2>/dev/null \
  || "${pip[@]}" --no-deps "silero-vad>=6.2"
echo "setup: ready ($mode): .venv/bin/hark" >&2
