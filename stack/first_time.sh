#!/usr/bin/env bash
# A newcomer's first `make stack-up`: on a fresh clone of this checkout's commit (no .venv, no
# .stack), `make stack-up` must work the first time, then `make stack-down` must stop it all.
# .ci/run calls this before its own stack; it needs the stack's ports free. The clone goes away.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$repo" rev-parse HEAD)"
work="$(mktemp -d)"
clone="$work/opply"

cleanup() {
    make -C "$clone" --no-print-directory stack-down >/dev/null 2>&1 || true
    # PgBouncer's folder outside the clone (when run as root), named after the clone's path.
    if [ -x "$clone/.venv/bin/python" ]; then
        (cd "$clone/stack" && ../.venv/bin/python -c \
            'import shutil, stack; shutil.rmtree(stack.pgbouncer_dir(), ignore_errors=True)') || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet --no-checkout "$repo" "$clone"
git -C "$clone" checkout --quiet --detach "$commit"
echo "first_time: a fresh clone of $commit in $clone: make stack-up"
began=$SECONDS
make -C "$clone" --no-print-directory stack-up
make -C "$clone" --no-print-directory stack-status
make -C "$clone" --no-print-directory stack-down
echo "first_time: make stack-up and stack-down passed on a fresh clone in $((SECONDS - began)) s"
