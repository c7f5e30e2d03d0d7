"""deploy/aws/opply.yaml, read as data: what docs/deployment.md's runbook relies on. cfn-lint
and checkov (`make deploy-lint`) check it against AWS's own rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "opply.yaml"
TASKS = ("ApiTask", "WorkerTask", "MigrateTask")


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) kept as {"!Tag": value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"!{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tagged)


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    found: dict[str, Any] = template["Resources"]
    return found


def container(resources: dict[str, Any], task: str) -> dict[str, Any]:
    (only,) = resources[task]["Properties"]["ContainerDefinitions"]
    found: dict[str, Any] = only
    return found


def settings(resources: dict[str, Any], task: str) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container(resources, task)["Environment"]}


def test_every_task_gets_the_same_settings_and_secrets(resources: dict[str, Any]) -> None:
    api = container(resources, "ApiTask")
    assert settings(resources, "WorkerTask") == settings(resources, "ApiTask")
    migrate = settings(resources, "MigrateTask")
    assert migrate | {"DATABASE_URL": None} == settings(resources, "ApiTask") | {
        "DATABASE_URL": None
    }
    for task in TASKS[1:]:
        assert container(resources, task)["Secrets"] == api["Secrets"], task


def test_the_services_go_through_rds_proxy_and_migrations_straight_to_postgresql(
    resources: dict[str, Any],
) -> None:
    assert "${Proxy.Endpoint}" in settings(resources, "ApiTask")["DATABASE_URL"]["!Sub"]
    assert (
        "${Database.Endpoint.Address}" in settings(resources, "MigrateTask")["DATABASE_URL"]["!Sub"]
    )


def test_the_services_leave_migrations_to_the_one_off_task(resources: dict[str, Any]) -> None:
    api = settings(resources, "ApiTask")
    secrets = {s["Name"] for s in container(resources, "ApiTask")["Secrets"]}

    assert api["OPPLY_MIGRATE_ON_START"] == "0"
    assert api["OPPLY_ENV"] == "production"
    assert {"SECRET_KEY", "DATABASE_PASSWORD", "RATELIMIT_STORAGE_URI"} <= secrets
    assert "Command" not in container(resources, "ApiTask")  # the image's gunicorn
    assert container(resources, "WorkerTask")["Command"] == ["opply", "worker"]
    assert container(resources, "MigrateTask")["Command"] == ["opply", "db", "upgrade"]


def test_a_rolling_deploy_keeps_every_task_until_its_replacement_is_ready(
    resources: dict[str, Any],
) -> None:
    for service in ("ApiService", "WorkerService"):
        deployment = resources[service]["Properties"]["DeploymentConfiguration"]
        assert deployment["MinimumHealthyPercent"] == 100, service
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    targets = resources["ApiTargets"]["Properties"]
    assert targets["HealthCheckPath"] == "/readyz"
    assert resources["ApiScaling"]["Properties"]["MinCapacity"] >= 2
