"""/docs/ renders in a real headless Chromium with the network cut off (a namespace with only lo).

The original service's Swagger page never rendered; this one must, without any CDN.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (.ci/run installs it)",
    ),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is missing"),
]


def test_swagger_ui_renders_every_operation_with_no_network(tmp_path: Path) -> None:
    server = tmp_path / "serve.py"
    server.write_text(
        textwrap.dedent(
            f"""
            import os
            os.environ["SECRET_KEY"] = "docs-browser-test-secret-0123456789abcdef"
            os.environ["DATABASE_URL"] = "sqlite:///{tmp_path}/db.sqlite3"
            os.environ["OPPLY_ENV"] = "test"
            from opply.entrypoints.cli import main
            main(["db", "upgrade"])
            from opply.entrypoints.app import create_app
            from werkzeug.serving import make_server
            make_server("127.0.0.1", 8765, create_app()).serve_forever()
            """
        )
    )
    probe = "import urllib.request as u; u.urlopen('http://127.0.0.1:8765/healthz')"
    # Inside a fresh network namespace only loopback exists: a CDN could not be reached.
    script = f"""
        set -e
        ip link set lo up 2>/dev/null || true
        {sys.executable} {server} > {tmp_path}/server.log 2>&1 &
        for i in $(seq 1 60); do
            {sys.executable} -c "{probe}" 2>/dev/null && break
            sleep 0.25
        done
        {sys.executable} -c "import urllib.request as u; u.urlopen('https://pypi.org', timeout=2)" \
            2>/dev/null && echo NETWORK-REACHABLE
        {CHROMIUM} {CHROMIUM_FLAGS} --user-data-dir={tmp_path}/profile \
            --virtual-time-budget=10000 --dump-dom http://127.0.0.1:8765/docs/ 2>/dev/null
        kill %1
    """
    result = subprocess.run(
        ["unshare", "-n", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "unshare" in result.stderr:
        pytest.fail(f"could not create a network namespace: {result.stderr}")
    dom = result.stdout
    assert "NETWORK-REACHABLE" not in dom
    for path in ("/api/token/", "/api/v1/products/", "/api/v1/orders/{order_id}/cancel/"):
        assert f'data-path="{path}"' in dom, (path, dom[-2000:], result.stderr[-2000:])
    assert "Opply API" in dom
