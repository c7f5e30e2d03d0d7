"""Summarise py-spy's collapsed stacks (``BENCH_PROFILE=dir make bench``): where a worker's time
goes, inclusive, by function and by package.

    python bench/profile_summary.py /tmp/profiles/place_order,_2_lines.txt [top]
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]+)(?::\d+)?\)$")


def summarise(path: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        names = []
        for frame in frames:
            m = FRAME.match(frame.strip())
            if m:
                file = m["file"].split("site-packages/")[-1].split("/src/")[-1]
                names.append(f"{m['func']} ({file})")
            else:
                names.append(frame.strip())
        if any("wait_for_requests" in n or "select (selectors.py)" in n for n in names[-2:]):
            idle += count
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    lines = [f"{path.name}: {total} samples, {idle / max(total, 1):.0%} idle in accept/select"]
    lines.append("inclusive:")
    for name, count in inclusive.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    lines.append("self:")
    for name, count in own.most_common(top):
        lines.append(f"  {count / total:6.1%}  {name}")
    return "\n".join(lines)


LAYERS = [
    (
        "waiting for PostgreSQL (do_execute, commit, rollback)",
        ("do_execute", "do_commit", "do_rollback", "do_executemany", "do_ping"),
    ),
    ("JSON request log (logging)", ("logging/__init__.py", "jsonlog.py")),
    ("Prometheus metrics", ("prometheus_client",)),
    ("rate limiter (flask_limiter, limits)", ("flask_limiter", "limits/")),
    ("marshmallow dump and load, webargs", ("marshmallow/", "webargs/")),
    ("SQLAlchemy (Python side)", ("sqlalchemy/",)),
    ("token check (PyJWT)", ("jwt/",)),
    ("argon2", ("argon2",)),
    ("gunicorn HTTP parse and write", ("gunicorn/http", "gunicorn/util.py")),
]


def layers(path: Path) -> str:
    """Self time by layer: each sample goes to the layer of its innermost frame (a layer's
    decorator that wraps a view, webargs' say, must not collect the view's own time)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        innermost = stack.split(";")[-1]
        layer = next((name for name, keys in LAYERS if any(k in innermost for k in keys)), None)
        counts[layer or "everything else (Flask, Werkzeug, our code)"] += count
    return "\n".join(
        f"  {count / max(total, 1):6.1%}  {name}" for name, count in counts.most_common()
    )


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
    print("by layer:")
    print(layers(Path(sys.argv[1])))
