"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Engine

from opply.adapters.database import ping
from opply.entrypoints.api.schemas import StatusSchema
from opply.entrypoints.container import Container

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, StatusSchema, example={"status": "ok"})
    def get(self) -> dict[str, Any]:
        """The process is up

        Does not touch the database: use it to decide whether to restart the process."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, StatusSchema, example={"status": "ok"})
    @blp.alt_response(
        503, response="SERVICE_UNAVAILABLE", description="The database does not answer"
    )
    @inject
    def get(self, engine: Engine = Provide[Container.engine]) -> Any:
        """The database answers

        Use it to decide whether to send traffic to this instance."""
        if ping(engine):
            return {"status": "ok"}
        from opply.entrypoints.api.problems import problem

        return problem(503, "service_unavailable", "The database does not answer")
