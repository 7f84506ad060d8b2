"""The docker-compose stack, its image and its monitoring, checked without Docker."""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from activities.execution import ExecutionActivities
from activities.ledger import LedgerActivities
from activities.settlement import SettlementActivities
from activities.signing import SigningActivities
from metrics import REGISTRY
from settings import Settings, load_settings
from tests.paths import REPO_ROOT
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"
SCHEMA_PATH = REPO_ROOT / "tests" / "schemas" / "compose-spec.json"
PROMETHEUS_PATH = REPO_ROOT / "deploy" / "prometheus.yml"
ALERTS_PATH = REPO_ROOT / "deploy" / "alerts.yml"
RUNBOOK_PATH = REPO_ROOT / "docs" / "operations.md"

DESIGN_SERVICES = {"postgres", "temporal", "temporal-ui", "api", "worker", "prometheus"}
SETUP_SERVICE = "temporal-setup"
APP_SERVICES = ("api", "worker", "worker-simulated")
API_COMMAND = (
    "uvicorn --factory api.main:create_app --host 0.0.0.0 --port 8000"
    " --no-proxy-headers --h11-max-incomplete-event-size 98304"
).split()
REQUIRED_VARIABLES = (
    "X402_FACILITATOR_SECRET",
    "STARKNET_RPC_URL",
    "STARKZAP_EXECUTOR_URL",
    "STARKZAP_EXECUTOR_API_KEY",
    "POSTGRES_PASSWORD",
)
# What an operator's .env holds at the least: the required lines, nothing else.
OPERATOR_ENV = {
    "X402_FACILITATOR_SECRET": "a-real-facilitator-secret-0123456789",
    "STARKNET_RPC_URL": "https://rpc.example.com/v0_8",
    "STARKZAP_EXECUTOR_URL": "https://starkzap.example.com",
    "STARKZAP_EXECUTOR_API_KEY": "starkzap-key-0123456789",
    "POSTGRES_PASSWORD": "postgres-password-0123456789",
}

# Compose interpolation: $$, $NAME, ${NAME}, ${NAME-d}, ${NAME:-d}, ${NAME:?e}, ...
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A ${NAME:?message} had no value: compose refuses to start."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` with every variable replaced the way Compose replaces it."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _resolve(match, env), value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _resolve(match: re.Match[str], env: dict[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["named"]
    value, op, arg = env.get(name), match["op"] or "", match["arg"] or ""
    unset = value is None or (op.startswith(":") and value == "")
    if op.endswith("?") and unset:
        raise MissingVariable(f"{name}: {arg}")
    if op.endswith("-") and unset:
        return arg
    return value or ""


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_PATH)


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as Compose sees it with the operator's .env."""
    return interpolate(raw_compose, OPERATOR_ENV)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    groups = _load_yaml(ALERTS_PATH)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service["environment"].items()}


def _healthcheck_command(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"])


def _setup_script(services: dict[str, dict[str, Any]]) -> str:
    return " ".join(services[SETUP_SERVICE]["command"])


# The file and its schema.


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)

    errors = list(validator_class(schema).iter_errors(compose))

    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_compose_schema_rejects_a_misspelled_service_key(
    compose: dict[str, Any],
) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"]["healthcheck"]

    errors = list(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(broken)
    )

    assert any("helthcheck" in error.message for error in errors)


def test_compose_file_has_no_version_key(raw_compose: dict[str, Any]) -> None:
    assert "version" not in raw_compose


# Services, health and start order.


def test_compose_runs_every_service_of_the_design(
    services: dict[str, dict[str, Any]],
) -> None:
    assert DESIGN_SERVICES | {SETUP_SERVICE} <= set(services)


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    long_running = {name for name in services if name != SETUP_SERVICE}

    missing = {
        name
        for name in long_running
        if "healthcheck" not in services[name]
        or services[name]["healthcheck"].get("disable")
        or services[name]["healthcheck"]["test"][0] == "NONE"
    }

    assert missing == set()


def test_search_attribute_setup_runs_once_and_is_waited_for(
    services: dict[str, dict[str, Any]],
) -> None:
    setup = services[SETUP_SERVICE]

    waited_by = {
        name
        for name, service in services.items()
        if service.get("depends_on", {}).get(SETUP_SERVICE, {}).get("condition")
        == "service_completed_successfully"
    }

    assert setup["restart"] == "no" and "healthcheck" not in setup
    assert {"api", "worker", "worker-simulated"} <= waited_by


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_postgres_and_temporal(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]

    conditions = {
        dependency: spec["condition"] for dependency, spec in depends_on.items()
    }

    assert conditions["postgres"] == "service_healthy"
    assert conditions["temporal"] == "service_healthy"


def test_temporal_health_is_the_cli_cluster_health_check(
    services: dict[str, dict[str, Any]],
) -> None:
    command = _healthcheck_command(services["temporal"])

    assert "temporal operator cluster health --address temporal:7233" in command
    assert "grep -qw SERVING" in command


def test_postgres_keeps_its_data_and_checks_readiness(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]

    assert postgres["image"] == "postgres:16"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in _healthcheck_command(postgres)


# The API and the worker.


def test_api_and_worker_build_the_one_image(
    services: dict[str, dict[str, Any]],
) -> None:
    api, worker = services["api"], services["worker"]

    assert (
        api["build"] == worker["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    )
    assert api["image"] == worker["image"]
    assert "command" not in api
    assert worker["command"] == ["x402-worker"]


def test_api_is_healthy_when_ready(services: dict[str, dict[str, Any]]) -> None:
    assert "http://127.0.0.1:8000/readyz" in _healthcheck_command(services["api"])


def test_worker_health_and_scrapes_use_its_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]

    port = _environment(worker)["X402_METRICS_PORT"]

    assert port == "9464"
    assert f"http://127.0.0.1:{port}/metrics" in _healthcheck_command(worker)
    assert f"worker:{port}" in _scrape_targets()["x402-worker"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment_loads_with_production_rules(
    services: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
    for key, value in _environment(services[name]).items():
        monkeypatch.setenv(key, value)

    settings = load_settings()

    assert settings.marketplace_strict_onchain_execution is True
    assert settings.starkzap_allow_simulated_execution is False
    assert settings.x402_verify_onchain_settlement is True
    assert settings.x402_legacy_proof_compat is False
    assert settings.x402_legacy_settlement_compat is False
    assert settings.x402_facilitator_secret_previous is None
    assert settings.temporal_address == "temporal:7233"
    assert str(settings.starkzap_executor_url).startswith(
        OPERATOR_ENV["STARKZAP_EXECUTOR_URL"]
    )


@pytest.mark.parametrize("variable", REQUIRED_VARIABLES)
@pytest.mark.parametrize("value", [None, ""])
def test_compose_refuses_to_start_without_a_required_variable(
    raw_compose: dict[str, Any], variable: str, value: str | None
) -> None:
    env = {key: item for key, item in OPERATOR_ENV.items() if key != variable}
    if value is not None:
        env[variable] = value

    with pytest.raises(MissingVariable) as refusal:
        interpolate(raw_compose, env)

    assert str(refusal.value).startswith(f"{variable}: ")


def test_emergency_overrides_allow_simulated_execution(
    raw_compose: dict[str, Any],
) -> None:
    env = OPERATOR_ENV | {
        "MARKETPLACE_STRICT_ONCHAIN_EXECUTION": "false",
        "STARKZAP_ALLOW_SIMULATED_EXECUTION": "true",
    }

    api = _environment(interpolate(raw_compose, env)["services"]["api"])

    assert api["MARKETPLACE_STRICT_ONCHAIN_EXECUTION"] == "false"
    assert api["STARKZAP_ALLOW_SIMULATED_EXECUTION"] == "true"


def test_simulated_worker_is_opt_in_and_has_no_executor(
    services: dict[str, dict[str, Any]],
) -> None:
    simulated = services["worker-simulated"]

    script = " ".join(simulated["command"])

    assert simulated["profiles"] == ["simulated-execution"]
    assert "unset STARKZAP_EXECUTOR_URL STARKZAP_EXECUTOR_API_KEY" in script
    assert script.endswith("exec x402-worker")
    assert simulated["networks"]["default"]["aliases"] == ["worker"]


def test_worker_drains_before_docker_kills_it(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]

    grace = worker["stop_grace_period"]

    assert worker["init"] is True
    assert int(grace.removesuffix("s")) > 30  # worker.GRACEFUL_SHUTDOWN


# Temporal search attributes.


def test_setup_registers_each_search_attribute_as_keyword(
    services: dict[str, dict[str, Any]],
) -> None:
    script = _setup_script(services)

    registered = set(re.findall(r"search-attribute create --name (\w+) --type", script))

    assert registered == {key.name for key in SEARCH_ATTRIBUTES}
    for key in SEARCH_ATTRIBUTES:
        assert (
            f"temporal operator search-attribute create --name {key.name} "
            "--type Keyword --address temporal:7233"
        ) in script


# Prometheus and the alert rules.


def _scrape_targets() -> dict[str, set[str]]:
    """host:port targets per job, static or found through DNS."""
    config = _load_yaml(PROMETHEUS_PATH)
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            found.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            found.update(f"{name}:{dns['port']}" for name in dns["names"])
    return targets


def test_prometheus_scrapes_the_api_and_the_worker() -> None:
    targets = _scrape_targets()

    assert targets["x402-api"] == {"api:8000"}
    assert targets["x402-worker"] == {"worker:9464"}


def test_prometheus_gets_its_config_and_rules_from_deploy(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = services["prometheus"]["volumes"]

    config = _load_yaml(PROMETHEUS_PATH)

    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_old_pending_payment_alert_waits_five_minutes(
    alert_rules: list[dict[str, Any]],
) -> None:
    rule = next(r for r in alert_rules if r["alert"] == "X402PendingPaymentTooOld")

    assert "x402_oldest_pending_payment_age_seconds" in rule["expr"]
    assert rule["expr"].rstrip().endswith("> 600")
    assert rule["for"] == "5m"


@pytest.mark.parametrize(
    "metric",
    ["x402_verify_rejected_total", "x402_settle_failed_total", "x402_rejections_total"],
)
def test_an_alert_watches_each_failure_counter(
    alert_rules: list[dict[str, Any]], metric: str
) -> None:
    assert any(metric in rule["expr"] for rule in alert_rules)


def test_alerts_name_only_metrics_the_rails_export(
    alert_rules: list[dict[str, Any]],
) -> None:
    exported = _exported_metric_names()

    used = {m for rule in alert_rules for m in re.findall(r"\bx402_\w+", rule["expr"])}

    assert used and used <= exported


def test_alerts_name_only_real_activities(alert_rules: list[dict[str, Any]]) -> None:
    hosts = (
        ExecutionActivities,
        LedgerActivities,
        SettlementActivities,
        SigningActivities,
    )
    names = {
        definition.name
        for host in hosts
        for member in vars(host).values()
        if (definition := getattr(member, "__temporal_activity_definition", None))
    }

    used = {
        a for r in alert_rules for a in re.findall(r'activity_type="(\w+)"', r["expr"])
    }

    assert used and used <= names


def test_every_alert_links_an_existing_runbook_section(
    alert_rules: list[dict[str, Any]],
) -> None:
    headings = re.findall(r"^#+ (.+)$", RUNBOOK_PATH.read_text(encoding="utf-8"), re.M)
    anchors = {_github_anchor(heading) for heading in headings}

    links = {rule["annotations"]["runbook"] for rule in alert_rules}

    assert {link.partition("#")[2] for link in links} <= anchors
    assert {link.partition("#")[0] for link in links} == {"docs/operations.md"}


def _exported_metric_names() -> set[str]:
    suffixes = {
        "counter": ["_total"],
        "gauge": [""],
        "histogram": ["_bucket", "_sum", "_count"],
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes[family.type]
    }


def _github_anchor(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# The image.


def _final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(
        i for i, line in enumerate(instructions) if line.startswith("FROM ")
    )
    return instructions[last_from:]


def test_image_runs_the_api_as_an_unprivileged_user() -> None:
    stage = _final_stage((REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))

    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    (cmd,) = [line for line in stage if line.startswith("CMD ")]
    (healthcheck,) = [line for line in stage if line.startswith("HEALTHCHECK ")]

    assert stage[0] == "FROM python:3.11-slim"
    assert users and users[-1] not in {"root", "0"}
    assert json.loads(cmd.removeprefix("CMD ")) == API_COMMAND
    assert "http://127.0.0.1:8000/healthz" in healthcheck


def test_dockerignore_admits_every_module_the_wheel_needs() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    needed = {"pyproject.toml", "README.md"}
    needed |= {f"{module}.py" for module in setuptools["py-modules"]}
    needed |= {
        pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]
    }

    lines = (REPO_ROOT / ".dockerignore").read_text("utf-8").splitlines()
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}

    assert "*" in lines  # everything else stays out
    assert needed <= admitted
