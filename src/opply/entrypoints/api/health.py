"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Engine

from opply.adapters.database import ping
from opply.entrypoints import release
from opply.entrypoints.api.dumping import Rendered
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.problems import ServiceUnavailable
from opply.entrypoints.api.schemas import HealthSchema, StatusSchema
from opply.entrypoints.container import Container

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators")

OK = Rendered(status="ok")
RELEASE_EXAMPLE = {"version": "1.2.0", "commit": "808dfab8c0ffee0000000000000000000000000a"}

engine: Engine = Provide[Container.engine]


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema, example={"status": "ok", **RELEASE_EXAMPLE})
    @operation("checkHealth", uses_database=False)
    def get(self) -> Any:
        """The process is up, and which release it runs

        Does not touch the database: use it to decide whether to restart the process. `version`
        and `commit` tell which release answers, e.g. while a rolling deploy replaces one."""
        return Rendered(status="ok", **asdict(release.current()))


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, StatusSchema, example={"status": "ok"})
    @operation("checkReadiness", ServiceUnavailable, uses_database=False)
    def get(self) -> Any:
        """The database answers

        Use it to decide whether to send traffic to this instance."""
        if ping(engine):
            return OK
        raise ServiceUnavailable("The database does not answer")
