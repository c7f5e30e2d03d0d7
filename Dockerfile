# The Opply ordering backend: gunicorn serving the Flask app on $PORT (8000), as a non-root user.
# Build: `make build` (docker compose build) or `docker build -t opply .`
# No `# syntax=` directive: it makes BuildKit fetch a frontend image from Docker Hub, so a build
# without a registry would fail. The built-in frontend knows everything used here.
# PYTHON_IMAGE may be any Debian-style image with Python 3.11 on PATH as `python` (make image-test
# builds on one made with debootstrap).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: install the pinned dependencies and the package into a virtualenv ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the lock file: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
# --no-deps: everything the package needs is already installed at the locked versions.
# pip and setuptools only install: the runtime gets the virtualenv without them.
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib \
    && pip uninstall --yes --quiet pip setuptools

# ---- runtime: the virtualenv, the start command and nothing else -----------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPPLY_ENV=production \
    PORT=8000
# The base's own pip/setuptools (python:*-slim has them, a Debian python3 has none) go too.
RUN groupadd --system --gid 10001 opply \
    && useradd --system --uid 10001 --gid opply --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin opply \
    && if python -m pip --version >/dev/null 2>&1; then \
           python -m pip uninstall --yes --quiet pip setuptools wheel; \
       fi
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/opply-entrypoint
# The commit the image is built from, for GET /healthz and `opply --version` (an image has no
# .git): `docker build --build-arg OPPLY_GIT_COMMIT="$(git rev-parse HEAD)" .`. Last, so that a
# new commit rebuilds no layer above.
ARG OPPLY_GIT_COMMIT=unknown
ENV OPPLY_GIT_COMMIT=${OPPLY_GIT_COMMIT}
# The one folder the app writes (gunicorn's and Prometheus' temporary files): declared, so that
# a read-only root file system (ECS, deploy/aws/) can mount a task volume there, which Fargate
# creates with the image's permissions for the folder (1777).
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 8000
# slim has no curl: ask the app with the Python that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=3)"]
# SIGTERM (docker stop, ECS) reaches gunicorn, which finishes in-flight requests and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["opply-entrypoint"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "opply.entrypoints.wsgi:app"]
