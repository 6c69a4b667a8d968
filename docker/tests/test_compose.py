"""Static checks of docker/docker-compose.yml and docker/Dockerfile (no Docker engine needed).

- `docker-compose -f docker/docker-compose.yml config` accepts the file (Debian's docker-compose
  1.29; `docker compose` v2 is used when that is what is installed);
- every image is pinned to a tag (no `latest`, no untagged image), in the compose file and in
  the Dockerfile;
- every variable the compose file interpolates is listed in docker/.env.example, with the same
  default; every environment entry has a value; no password is written in the file;
- scaled services have no container_name and no published ports; published ports don't clash;
- healthchecks and depends_on conditions give a start order;
- the Petrel nodes' KAFKA_* variables are keys Petrel knows (ConfigDefinitions.swift), and their
  listeners, node ids and quorum voters agree.

Without docker-compose the tests that need it skip and say why; with PETREL_CI=1 they fail.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
CONFIG_DEFINITIONS = ROOT / "Sources" / "Broker" / "Config" / "ConfigDefinitions.swift"
SCALED = ("collatz-producer", "clickhouse-sink")
NODES = ("petrel1", "petrel2", "petrel3")
WORKERS = ("collatz-producer", "clickhouse-sink", "api")


# ----------------------------------------------------------------------------- helpers

def compose_command():
    """Debian's docker-compose (v1), else the docker CLI's compose plugin, else None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def require_compose():
    cmd = compose_command()
    if cmd is None:
        reason = "docker-compose is not installed (apt-get install -y docker-compose)"
        if os.environ.get("PETREL_CI") == "1":
            pytest.fail(f"PETREL_CI=1: {reason}")
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return cmd


def run_config(*extra, env=None):
    cmd = require_compose()
    full_env = {k: v for k, v in os.environ.items()
                if not re.fullmatch(r"(COMPOSE_.*|DOCKER_.*)", k)}
    full_env.update(env or {})
    return subprocess.run(cmd + ["-f", str(COMPOSE)] + list(extra) + ["config"], cwd=ROOT,
                          capture_output=True, text=True, env=full_env, timeout=120)


def load_yaml(text):
    """PyYAML if this Python has it, else the Python that runs docker-compose (it needs PyYAML)."""
    try:
        import yaml  # noqa: PLC0415
        return yaml.safe_load(text)
    except ImportError:
        pass
    exe = shutil.which("docker-compose")
    candidates = []
    if exe:
        first = Path(exe).read_bytes()[:200].split(b"\n")[0].decode(errors="replace")
        if first.startswith("#!"):
            candidates.append(first[2:].strip().split()[0])
    candidates += ["/usr/bin/python3"]
    for python in candidates:
        if not os.path.exists(python):
            continue
        done = subprocess.run([python, "-c", "import sys, json, yaml; "
                               "print(json.dumps(yaml.safe_load(sys.stdin.read())))"],
                              input=text, capture_output=True, text=True)
        if done.returncode == 0:
            return json.loads(done.stdout)
    reason = "no PyYAML to read the compose file (pip install pyyaml, or apt-get install docker-compose)"
    if os.environ.get("PETREL_CI") == "1":
        pytest.fail(f"PETREL_CI=1: {reason}")
    pytest.skip(reason)


_resolved = None


def resolved():
    """`docker-compose config` output: the file with defaults interpolated, anchors merged."""
    global _resolved
    if _resolved is None:
        done = run_config()
        assert done.returncode == 0, done.stderr
        _resolved = load_yaml(done.stdout)
    return _resolved


def services():
    return resolved()["services"]


def env_example():
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=value: {line!r}"
        values[key.strip()] = value
    return values


def interpolations(text):
    """(name, default or None) for every ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?e} and $VAR ($$ is a literal $)."""
    found = []
    # YAML comments are not interpolated: drop whole-line and trailing " # ..." comments.
    text = "\n".join(re.sub(r"\s+#(?=[^\"']*$).*$", "", line) for line in text.splitlines()
                     if not line.lstrip().startswith("#"))
    text = text.replace("$$", "")
    for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}", text):
        found.append((m.group(1), m.group(3) if m.group(2) else None))
    for m in re.finditer(r"\$([A-Za-z_][A-Za-z0-9_]*)", text):
        found.append((m.group(1), None))
    return found


def published_ports(service):
    """(host_ip, published, protocol) for each published port of a resolved service."""
    out = []
    for p in service.get("ports", []) or []:
        if isinstance(p, dict):
            if p.get("published") is None:
                continue
            out.append((p.get("host_ip", "0.0.0.0"), str(p["published"]), p.get("protocol", "tcp")))
            continue
        spec, _, proto = str(p).partition("/")
        parts = spec.split(":")
        if len(parts) == 1:
            continue  # container port only: nothing published
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, parts[-2], proto or "tcp"))
    return out


def port_mappings(service):
    """(published, target) pairs of a resolved service, short or long port syntax."""
    out = []
    for p in service.get("ports", []) or []:
        if isinstance(p, dict):
            out.append((str(p.get("published")), str(p.get("target"))))
        else:
            parts = str(p).partition("/")[0].split(":")
            if len(parts) >= 2:
                out.append((parts[-2], parts[-1]))
    return out


def image_is_pinned(image):
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.split(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


def petrel_config_keys():
    text = CONFIG_DEFINITIONS.read_text()
    return set(re.findall(r'ConfigDefinition\(\s*"([a-z0-9._-]+)"', text))


def property_name(suffix):
    """EnvironmentConfig.propertyName(fromVariableSuffix:) in Python."""
    return suffix.lower().replace("_", ".").replace("...", "-").replace("..", "_")


# ----------------------------------------------------------------------------- (a) validity

def test_compose_config_is_valid():
    done = run_config()
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    assert "services:" in done.stdout


def test_compose_config_is_valid_with_env_example():
    done = run_config("--env-file", str(ENV_EXAMPLE))
    assert done.returncode == 0, f"docker-compose --env-file .env.example config failed:\n{done.stderr}"
    with_env = load_yaml(done.stdout)["services"]
    # .env.example holds the compose file's own defaults, so both give the same stack.
    assert with_env == services()


def test_expected_services_exist():
    assert set(services()) == {
        "petrel1", "petrel2", "petrel3", "collatz-producer", "clickhouse-sink", "api",
        "clickhouse", "postgres", "metabase", "metabase-provision", "kafka-ui"}


# ----------------------------------------------------------------------------- (b) images

def test_every_compose_image_is_pinned():
    for name, svc in services().items():
        image = svc.get("image")
        assert image, f"{name}: no image (a built service needs an image: name:tag too)"
        assert image_is_pinned(image), f"{name}: image {image!r} is not pinned to a tag"


def test_every_dockerfile_base_image_is_pinned():
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert len(froms) >= 2, "expected a multi-stage build"
    for image in froms:
        assert image_is_pinned(image), f"Dockerfile: FROM {image} is not pinned"


def test_dockerfile_runtime_is_non_root_with_healthcheck():
    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("\nFROM "):]
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", runtime, flags=re.M), "runtime stage runs as root"
    assert re.search(r"^HEALTHCHECK\s", runtime, flags=re.M), "runtime stage has no HEALTHCHECK"
    assert re.search(r'^ENTRYPOINT\s+\[".*petrel"\]', runtime, flags=re.M)
    build = text[:text.rindex("\nFROM ")]
    assert "--product petrel" in build and "-c release" in build and "--static-swift-stdlib" in build
    assert "zlib1g-dev" in build


def test_swift_image_is_new_enough_for_the_package():
    tools = re.search(r"swift-tools-version:\s*(\d+)\.(\d+)", (ROOT / "Package.swift").read_text())
    image = re.search(r"^FROM\s+swift:(\d+)\.(\d+)", DOCKERFILE.read_text(), flags=re.M)
    assert tools and image
    assert tuple(map(int, image.groups())) >= tuple(map(int, tools.groups()))


def test_dockerignore_keeps_build_directories_out():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".build*" in lines and ".git" in lines


# ----------------------------------------------------------------------------- (b) variables

def test_every_interpolated_variable_is_in_env_example_with_the_same_default():
    example = env_example()
    for name, default in interpolations(COMPOSE.read_text()):
        assert name in example, f"${{{name}}} is used by docker-compose.yml but not set in .env.example"
        if default is not None:
            assert example[name] == default, (
                f"${{{name}}}: default {default!r} in docker-compose.yml, {example[name]!r} in .env.example")


def test_env_example_has_no_unused_variables():
    used = {name for name, _ in interpolations(COMPOSE.read_text())}
    unused = set(env_example()) - used
    assert not unused, f".env.example sets variables the compose file never reads: {sorted(unused)}"


def test_every_environment_entry_has_a_value():
    for name, svc in services().items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        for key, value in env.items():
            assert value not in (None, ""), f"{name}: environment {key} has no value"


def test_no_password_is_written_in_the_compose_file():
    for name, svc in services().items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|PASS\b|SECRET|TOKEN", key) and not key.endswith("_FILE"):
                pytest.fail(f"{name}: {key} is set in the compose file; use a secret file (*_FILE)")
            if key.endswith("_FILE") and re.search(r"PASS|SECRET|TOKEN", key):
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"


def test_secret_files_have_committed_examples_and_are_ignored():
    for name, secret in resolved().get("secrets", {}).items():
        path = Path(secret["file"])
        assert path.parent == DOCKER / "secrets", f"secret {name}: {path} is outside docker/secrets"
        assert path.with_name(path.name + ".example").exists(), f"secret {name}: no {path.name}.example"
    ignore = (DOCKER / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore and "!*.example" in ignore


def test_services_mount_the_secrets_their_file_variables_name():
    for name, svc in services().items():
        mounted = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets", []) or []}
        for key, value in (svc.get("environment") or {}).items():
            if str(value).startswith("/run/secrets/"):
                assert str(value)[len("/run/secrets/"):] in mounted, f"{name}: {key} names an unmounted secret"


# ----------------------------------------------------------------------------- (b) scaling, ports

def test_no_container_names():
    for name, svc in services().items():
        assert "container_name" not in svc, f"{name}: container_name prevents scaling and parallel stacks"


def test_scaled_services_publish_no_ports():
    for name in SCALED:
        assert published_ports(services()[name]) == [], f"{name} publishes ports, so it cannot scale"


def test_published_ports_do_not_clash():
    seen = {}
    for name, svc in services().items():
        for host_ip, port, proto in published_ports(svc):
            for (other_ip, other_port, other_proto), other in seen.items():
                same_ip = host_ip == other_ip or "0.0.0.0" in (host_ip, other_ip)
                assert not (same_ip and port == other_port and proto == other_proto), (
                    f"{name} and {other} both publish {proto} port {port}")
            seen[(host_ip, port, proto)] = name
    published = {p for _, p, _ in seen}
    assert {"9092", "9093", "9094", "8000", "8080", "3000"} <= published


# ----------------------------------------------------------------------------- (b) start order

def test_long_running_services_have_healthchecks():
    for name, svc in services().items():
        if svc.get("restart") == "no":
            continue  # one-shot
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name}: no healthcheck"


def test_depends_on_waits_for_health_or_completion():
    svcs = services()
    for name, svc in svcs.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            condition = spec.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dep}: condition {condition}")
            if condition == "service_healthy":
                assert svcs[dep].get("healthcheck"), f"{name} waits for {dep}'s health, which it lacks"
    assert set(svcs["clickhouse-sink"]["depends_on"]) >= {"clickhouse", *NODES}
    assert set(svcs["collatz-producer"]["depends_on"]) >= set(NODES)
    assert set(svcs["metabase"]["depends_on"]) >= {"postgres"}
    assert set(svcs["metabase-provision"]["depends_on"]) >= {"metabase", "clickhouse"}


def test_no_dependency_cycles():
    svcs = services()
    state = {}

    def visit(n, path):
        assert state.get(n) != "visiting", f"depends_on cycle: {' -> '.join(path + [n])}"
        if state.get(n) == "done":
            return
        state[n] = "visiting"
        for dep in (svcs[n].get("depends_on") or {}):
            visit(dep, path + [n])
        state[n] = "done"

    for n in svcs:
        visit(n, [])


# ----------------------------------------------------------------------------- the cluster

def test_node_environment_uses_keys_petrel_knows():
    keys = petrel_config_keys()
    assert "controller.quorum.voters" in keys, "could not read ConfigDefinitions.swift"
    for node in NODES:
        for var in services()[node]["environment"]:
            if var.startswith("KAFKA_"):
                key = property_name(var[len("KAFKA_"):])
                assert key in keys and not key.startswith("petrel."), f"{node}: {var} -> {key} is unknown"
            elif var.startswith("PETREL_"):
                key = property_name(var[len("PETREL_"):])
                assert key in keys or "petrel." + key in keys, f"{node}: {var} -> {key} is unknown"
            else:
                assert var == "CLUSTER_ID", f"{node}: {var} is not read by petrel broker"


def test_nodes_listeners_ids_and_voters_agree():
    svcs = services()
    ids = set()
    for i, node in enumerate(NODES, start=1):
        env = svcs[node]["environment"]
        assert svcs[node]["command"] == ["broker"]
        node_id = int(env["KAFKA_NODE_ID"])
        ids.add(node_id)
        voters = dict(v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert voters == {"1": "petrel1:9093", "2": "petrel2:9093", "3": "petrel3:9093"}
        listeners = dict(l.split("://") for l in env["KAFKA_LISTENERS"].split(","))
        advertised = dict(l.split("://") for l in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
        assert "CONTROLLER" not in advertised
        assert voters[str(node_id)].endswith(":" + listeners["CONTROLLER"].rsplit(":", 1)[1])
        # INTERNAL: reachable as <service>:<port> inside the network.
        assert advertised["INTERNAL"] == f"{node}:{listeners['INTERNAL'].rsplit(':', 1)[1]}"
        # EXTERNAL: the advertised host port is published to the container's EXTERNAL port.
        ext_host, ext_port = advertised["EXTERNAL"].rsplit(":", 1)
        assert ext_host == "localhost"
        assert ext_port == str(9091 + i)
        container_ext = listeners["EXTERNAL"].rsplit(":", 1)[1]
        assert (ext_port, container_ext) in port_mappings(svcs[node]), svcs[node]["ports"]
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols) == set(listeners)
        assert svcs[node]["volumes"], f"{node}: no volume"
    assert ids == {1, 2, 3}
    volumes = [svcs[n]["volumes"][0]["source"] if isinstance(svcs[n]["volumes"][0], dict)
               else svcs[n]["volumes"][0].split(":")[0] for n in NODES]
    assert len(set(volumes)) == 3, "each node needs its own volume"


def test_clients_bootstrap_from_the_internal_listeners():
    svcs = services()
    internal = ",".join(f"{n}:19092" for n in NODES)
    assert svcs["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == internal
    for worker in SCALED:
        assert svcs[worker]["environment"]["PETREL_BOOTSTRAP_SERVERS"] == internal


def test_workers_read_only_documented_variables():
    contract = (DOCKER / "ENVIRONMENT.md").read_text()
    for worker in WORKERS:
        svc = services()[worker]
        assert svc["command"][0] == worker
        for var in svc["environment"]:
            assert f"`{var}`" in contract, f"{worker}: {var} is not in docker/ENVIRONMENT.md"
