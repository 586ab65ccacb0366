"""The container and deployment files, validated offline.

- every YAML file passes yamllint (the repository's .yamllint);
- Kubernetes objects pass kubernetes-validate's strict schema check (unknown fields fail);
  it lets bad enum values through, so the values that matter (concurrencyPolicy, restart
  policy, strategy, probes ...) are asserted explicitly;
- OpenShift Templates: parameters referenced as ${X}/${{X}} are exactly those declared,
  the processed objects validate (Kubernetes kinds strictly, ImageStream and BuildConfig
  by explicit checks, since no schema for them ships offline);
- the kustomize tree renders with `kubectl kustomize` (skipped without kubectl) and the
  result validates;
- every environment variable a manifest sets is one moodump reads
  (moodump.config.is_known_env_name), every backup.conf parses with moodump's parser,
  and the paths the manifests mount are the ones the Containerfile sets up;
- hadolint on the Containerfile, shellcheck on container/*.sh.

Building the image needs podman, buildah and mmdebstrap and takes minutes, so it only
runs with MOODUMP_TEST_IMAGE_BUILD=1 (test_image_build).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import kubernetes_validate
import pytest
import yaml
from croniter import croniter
from yamllint import linter
from yamllint.config import YamlLintConfig

from crd_schemas import SCHEMAS as CRD_SCHEMAS
from moodump.config import is_known_env_name, parse_backup_conf, parse_timedelta
from moodump.db import ConnSettings, connect
from moodump.jobs.metrics import sample_names
from moodump.manifest import read_verify_record
from moodump.retention import RetentionPolicy
from moodump.retention import plan as retention_plan

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CONTAINER = ROOT / "container"
CONTAINERFILE = CONTAINER / "Containerfile"
OPENSHIFT = DEPLOY / "openshift"
K8S = DEPLOY / "k8s"
KUBE_VERSION = "1.30"

TEMPLATES = sorted(OPENSHIFT.glob("*.yml"))
K8S_YAML = sorted(K8S.rglob("*.yaml"))
ALL_YAML = [*TEMPLATES, *K8S_YAML, ROOT / ".yamllint"]
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "cronjob"]
MONITORING = K8S / "monitoring"

# Values for the parameters a Template leaves to the operator (required, no default).
OPERATOR_PARAMS = {
    "IMAGE_NAMESPACE": "abc123-tools",
    "ENVIRONMENT_NAME": "abc123-prod",
    "GIT_REPO_URL": "https://git.example.com/moodump.git",
}
OPENSHIFT_KINDS = {
    ("image.openshift.io/v1", "ImageStream"),
    ("build.openshift.io/v1", "BuildConfig"),
}
PARAM_RE = re.compile(r"\$\{\{?([A-Za-z_][A-Za-z0-9_]*)\}?\}")
SECRET_ENV = re.compile(r"(PASSWORD|WEBHOOK_URL|FTP_URL|FTP_USER|_USER)$")


# --------------------------------------------------------------------------- helpers


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def containerfile_env() -> dict[str, str]:
    """The ENV settings of the Containerfile's final stage."""
    text = CONTAINERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"([A-Z_]+)=(\S+)", line):
                env[name] = value
    return env


def quantity(text: str) -> float:
    """A Kubernetes quantity (512Mi, 2Gi, 250m, "2") as a number of bytes or cores."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "": 1}
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|m|)", str(text))
    assert m, f"unexpected quantity {text!r}"
    return float(m.group(1)) * units[m.group(2)]


def walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)
    elif isinstance(node, str):
        yield node


def process_template(template: dict[str, Any], overrides: dict[str, str]) -> list[dict[str, Any]]:
    """What `oc process` does with parameter values: ${X} in any string becomes the
    value; a whole-string ${{X}} becomes the value parsed as YAML (a number, a bool)."""
    values: dict[str, str] = {}
    for p in template["parameters"]:
        if p["name"] in overrides:
            values[p["name"]] = overrides[p["name"]]
        elif "value" in p:
            values[p["name"]] = str(p["value"])
        else:
            raise AssertionError(f"parameter {p['name']} needs a value (none given)")

    def sub(node: Any) -> Any:
        if isinstance(node, dict):
            return {sub(k): sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v) for v in node]
        if isinstance(node, str):
            whole = re.fullmatch(r"\$\{\{([A-Za-z0-9_]+)\}\}", node)
            if whole:
                return yaml.safe_load(values[whole.group(1)])
            return PARAM_RE.sub(lambda m: values[m.group(1)], node)
        return node

    return [sub(copy.deepcopy(o)) for o in template["objects"]]


def template_objects(name: str) -> list[dict[str, Any]]:
    (template,) = load_docs(OPENSHIFT / name)
    return process_template(template, OPERATOR_PARAMS)


def strict_validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def validate_any(obj: dict[str, Any]) -> None:
    """Strict schema validation for Kubernetes kinds, explicit checks for OpenShift ones."""
    for key in ("apiVersion", "kind", "metadata"):
        assert key in obj, f"object without {key}: {obj}"
    assert obj["metadata"].get("name"), f"{obj['kind']} without a name"
    if (obj["apiVersion"], obj["kind"]) in OPENSHIFT_KINDS:
        check_openshift_object(obj)
    elif (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS:
        # Prometheus Operator kinds: the schemas in tests/crd_schemas.py
        jsonschema.validate(obj, CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])])
    else:
        strict_validate(obj)


def check_openshift_object(obj: dict[str, Any]) -> None:
    kind, spec = obj["kind"], obj["spec"]
    if kind == "ImageStream":
        assert set(spec) <= {"lookupPolicy", "tags", "dockerImageRepository"}, spec
        assert isinstance(spec.get("lookupPolicy", {}).get("local", False), bool)
        for tag in spec.get("tags", []):
            assert set(tag) <= {"name", "from", "importPolicy", "referencePolicy", "annotations"}
            assert tag["name"]
            assert tag["from"]["kind"] in ("DockerImage", "ImageStreamTag", "ImageStreamImage")
            assert tag["from"]["name"]
            assert set(tag.get("importPolicy", {})) <= {"scheduled", "insecure", "importMode"}
            assert tag.get("referencePolicy", {}).get("type", "Source") in ("Source", "Local")
    elif kind == "BuildConfig":
        allowed = {
            "runPolicy", "source", "strategy", "output", "resources", "triggers",
            "successfulBuildsHistoryLimit", "failedBuildsHistoryLimit", "completionDeadlineSeconds",
            "nodeSelector", "postCommit", "serviceAccount",
        }  # fmt: skip
        assert set(spec) <= allowed, set(spec) - allowed
        assert spec.get("runPolicy", "Serial") in ("Serial", "Parallel", "SerialLatestOnly")
        assert spec["source"]["type"] == "Git" and spec["source"]["git"]["uri"]
        assert spec["strategy"]["type"] == "Docker"
        docker = spec["strategy"]["dockerStrategy"]
        assert set(docker) <= {
            "dockerfilePath",
            "from",
            "buildArgs",
            "env",
            "noCache",
            "pullSecret",
        }
        assert spec["output"]["to"]["kind"] in ("ImageStreamTag", "DockerImage")
        for trigger in spec.get("triggers", []):
            assert trigger["type"] in ("ConfigChange", "ImageChange", "GitHub", "Generic")
        # the build's resources are a core ResourceRequirements: validate them as a container's
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "build-resources"},
            "spec": {"containers": [{"name": "b", "image": "x", "resources": spec["resources"]}]},
        }
        strict_validate(pod)
    else:  # pragma: no cover - only the kinds above are used
        raise AssertionError(f"no check for {obj['apiVersion']} {kind}")


def pod_specs(objs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload object, pod template) for every Deployment and CronJob."""
    for o in objs:
        if o["kind"] == "Deployment":
            yield o, o["spec"]["template"]
        elif o["kind"] == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


# --------------------------------------------------------------------------- linting


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_yamllint(path: Path) -> None:
    conf = YamlLintConfig(file=str(ROOT / ".yamllint"))
    problems = list(linter.run(path.read_text(encoding="utf-8"), conf, str(path)))
    assert not problems, "\n".join(f"{path}:{p.line}:{p.column}: {p.desc}" for p in problems)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' (it is in the test extra)")
    return found


def test_hadolint_containerfile() -> None:
    res = subprocess.run(
        [_tool("hadolint"), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("script", sorted(CONTAINER.glob("*.sh")), ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    res = subprocess.run([_tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_structure_and_parameters(path: Path) -> None:
    (template,) = load_docs(path)
    assert template["kind"] == "Template"
    assert template["apiVersion"] == "template.openshift.io/v1"
    assert template["metadata"]["name"]
    assert template["objects"], "a Template without objects"
    declared = [p["name"] for p in template["parameters"]]
    assert len(declared) == len(set(declared)), "a parameter is declared twice"
    for p in template["parameters"]:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", p["name"]), p["name"]
        assert set(p) <= {
            "name", "displayName", "description", "value", "required", "generate", "from",
        }, p  # fmt: skip
        assert isinstance(p.get("value", ""), str), f"{p['name']}: values are strings"
        if p.get("required") and "value" not in p:
            assert p["name"] in OPERATOR_PARAMS, f"{p['name']} is required without a default"
    used = {m for s in walk_strings(template["objects"]) for m in PARAM_RE.findall(s)}
    assert used == set(declared), (
        f"used but not declared: {sorted(used - set(declared))}; "
        f"declared but not used: {sorted(set(declared) - used)}"
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_objects_validate(path: Path) -> None:
    objs = template_objects(path.name)
    for obj in objs:
        leftovers = [s for s in walk_strings(obj) if "${" in s]
        assert not leftovers, f"unsubstituted parameters: {leftovers}"
        validate_any(obj)


def test_openshift_kinds_have_no_offline_schema() -> None:
    """The reason ImageStream and BuildConfig get explicit checks instead."""
    for api_version, kind in OPENSHIFT_KINDS:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            strict_validate(obj)


def test_strict_validation_rejects_unknown_fields() -> None:
    """Guard: the schema check really is strict (a typo in a manifest would fail)."""
    deploy = one(template_objects("db-backup-deploy.yml"), "Deployment")
    broken = copy.deepcopy(deploy)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        strict_validate(broken)


def test_build_config_builds_the_containerfile() -> None:
    objs = template_objects("docker-build.yml")
    build = one(objs, "BuildConfig")
    streams = {o["metadata"]["name"] for o in objs if o["kind"] == "ImageStream"}
    spec = build["spec"]
    context = ROOT / spec["source"]["contextDir"]
    docker = spec["strategy"]["dockerStrategy"]
    assert docker["dockerfilePath"] == "container/Containerfile"
    assert (context / docker["dockerfilePath"]).is_file()
    assert (context / "pyproject.toml").is_file() and (context / "src" / "moodump").is_dir()
    assert docker["from"]["kind"] == "ImageStreamTag"
    assert docker["from"]["name"].split(":")[0] in streams
    assert spec["output"]["to"]["name"].split(":")[0] in streams
    assert {t["type"] for t in spec["triggers"]} == {"ConfigChange", "ImageChange"}
    # No credentials in build arguments (the old Moodle build passed some).
    for arg in docker.get("buildArgs", []):
        assert not re.search(r"PASSWORD|TOKEN|SECRET|USER", arg["name"]), arg
    assert "ARG MOODUMP_UID" in CONTAINERFILE.read_text()
    base = one(objs, "ImageStream", build["spec"]["strategy"]["dockerStrategy"]["from"]["name"]
               .split(":")[0])  # fmt: skip
    assert "bookworm" in base["spec"]["tags"][0]["name"]


def test_config_template_backup_conf_parses() -> None:
    cm = one(template_objects("db-backup-config.yml"), "ConfigMap")
    conf = parse_backup_conf(cm["data"]["backup.conf"], "db-backup-config.yml")
    assert [(s.host, s.database) for s in conf.specs] == [("mysql", "moodle")]
    assert [c.action.kind for c in conf.schedule] == ["backup", "verify"]
    assert not conf.notes


# --------------------------------------------------------------------------- workloads


def check_backup_pod(template: dict[str, Any], *, verify_volume: bool) -> None:
    """What every moodump pod needs, whichever manifest it comes from."""
    spec = template["spec"]
    (container,) = spec["containers"]
    image_env = containerfile_env()
    env = {e["name"]: e for e in container["env"]}
    # the image's entrypoint (tini) stays in place
    assert "command" not in container
    assert container["args"][0] in ("moodump", "/backup.sh")
    # every variable is one moodump reads; secrets come from Secrets only
    for name, entry in env.items():
        assert is_known_env_name(name), f"{name} is not a variable moodump reads"
        if SECRET_ENV.search(name):
            assert "secretKeyRef" in entry.get("valueFrom", {}), f"{name} must come from a Secret"
            assert "value" not in entry
    optional = {n for n, e in env.items() if e.get("valueFrom", {}).get("secretKeyRef", {})
                .get("optional")}  # fmt: skip
    assert optional == {
        "WEBHOOK_URL", "FTP_URL", "FTP_USER", "FTP_PASSWORD",
        # off-site copies to S3, encrypted to these public keys (issue 12)
        "S3_ENDPOINT", "S3_BUCKET", "S3_PREFIX", "S3_USER", "S3_PASSWORD", "S3_PRUNE_BACKUPS",
        "MOODUMP_ENCRYPT_RECIPIENTS",
    }  # fmt: skip
    assert {"MYSQL_USER", "MYSQL_PASSWORD", "DATABASE_USER", "DATABASE_PASSWORD"} <= set(env)
    assert env["TZ"]["value"] == image_env["TZ"] == "PST8PDT"
    ZoneInfo(env["TZ"]["value"])
    # mounts: backups at BACKUP_DIR, backup.conf where BACKUP_CONF points, verification
    # volume where the image keeps the throwaway server (TMPDIR)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all(m["name"] in volumes for m in mounts.values())
    backups = mounts[env["BACKUP_DIR"]["value"]]
    assert "persistentVolumeClaim" in volumes[backups["name"]]
    conf = mounts[env["BACKUP_CONF"]["value"]]
    assert conf["subPath"] == "backup.conf" and conf.get("readOnly") is True
    assert "configMap" in volumes[conf["name"]]
    verify_dir = image_env["TMPDIR"]
    assert (verify_dir in mounts) == verify_volume
    if verify_volume:
        assert "persistentVolumeClaim" in volumes[mounts[verify_dir]["name"]]
        # mariadbd of the local verification alone takes ~700 MiB (512M buffer pool)
        assert quantity(container["resources"]["limits"]["memory"]) >= 1536 * 2**20
    assert set(container["resources"]) == {"requests", "limits"}
    for key in ("cpu", "memory"):
        assert quantity(container["resources"]["requests"][key]) <= quantity(
            container["resources"]["limits"][key]
        )
    # hardened, and fine for OpenShift's restricted SCC (no fixed UID needed there)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # time to mark an interrupted backup FAILED and stop the verification server
    assert spec["terminationGracePeriodSeconds"] >= 60


def check_deployment(deploy: dict[str, Any]) -> None:
    spec = deploy["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    check_backup_pod(template, verify_volume=True)
    (container,) = template["spec"]["containers"]
    assert container["args"] == ["moodump", "run"]
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    # Liveness never depends on backup age: only "does the configuration still load".
    assert liveness["exec"]["command"] == ["moodump", "config"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 600
    assert liveness["timeoutSeconds"] >= 30
    # Readiness reports stale backups without killing anything.
    cmd = readiness["exec"]["command"]
    assert cmd[:3] == ["moodump", "status", "--max-age"] and len(cmd) == 4
    assert parse_timedelta(cmd[3]).total_seconds() >= 24 * 3600
    assert readiness["timeoutSeconds"] >= 30


def check_cronjob(cron: dict[str, Any], *, verify: bool) -> None:
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert croniter.is_valid(spec["schedule"]), spec["schedule"]
    ZoneInfo(spec["timeZone"])
    job = spec["jobTemplate"]["spec"]
    assert isinstance(job["backoffLimit"], int) and 0 <= job["backoffLimit"] <= 2
    # The old template killed jobs after 1600 s; a Moodle dump takes hours.
    assert job.get("activeDeadlineSeconds", 10**9) >= 6 * 3600
    assert spec.get("startingDeadlineSeconds", 10**9) >= 600
    template = job["template"]
    assert template["spec"]["restartPolicy"] == "Never"
    check_backup_pod(template, verify_volume=verify)
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["TZ"] == spec["timeZone"], "schedule and pod must use one time zone"
    if verify:
        assert container["args"] == ["/backup.sh", "-s", "-v", "all"]
    else:
        assert container["args"] == ["moodump", "run", "--once"]
    assert "livenessProbe" not in container and "readinessProbe" not in container


def check_pvcs(objs: list[dict[str, Any]], *, storage_class: str | None) -> None:
    pvcs = {o["metadata"]["name"]: o for o in objs if o["kind"] == "PersistentVolumeClaim"}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for _, t in pod_specs(objs)
        for v in t["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == set(pvcs), "every claim used is defined here, and every one is used"
    backup = next(p for name, p in pvcs.items() if name.endswith("-data"))
    assert backup["spec"].get("storageClassName") == storage_class
    for pvc in pvcs.values():
        assert quantity(pvc["spec"]["resources"]["requests"]["storage"]) >= 2**30


def check_network_policy(objs: list[dict[str, Any]]) -> None:
    policy = one(objs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"backup": "true"}}
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    (peer,) = rule["from"]
    selector = peer["podSelector"]["matchLabels"]
    pods = [t["metadata"]["labels"] for _, t in pod_specs(objs)]
    assert pods and all(selector.items() <= labels.items() for labels in pods)
    assert rule["ports"] == [{"protocol": "TCP", "port": 3306}]


def check_same_env(objs: list[dict[str, Any]]) -> None:
    envs = [t["spec"]["containers"][0]["env"] for _, t in pod_specs(objs)]
    assert all(e == envs[0] for e in envs), "the workloads differ in their environment"


def test_openshift_deployment() -> None:
    objs = template_objects("db-backup-deploy.yml")
    check_deployment(one(objs, "Deployment"))
    check_pvcs(objs, storage_class="netapp-file-backup")
    check_network_policy(objs)
    (template,) = load_docs(OPENSHIFT / "db-backup-deploy.yml")
    sizes = {p["name"]: p.get("value") for p in template["parameters"]}
    assert sizes["BACKUP_VOLUME_SIZE"] and sizes["VERIFICATION_VOLUME_SIZE"]
    image = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("/abc123-tools/moodump:latest")


def test_openshift_cronjobs() -> None:
    objs = template_objects("db-backup-cronjob.yml")
    check_cronjob(one(objs, "CronJob", "db-backup"), verify=False)
    check_cronjob(one(objs, "CronJob", "db-backup-verify"), verify=True)
    check_pvcs(objs, storage_class="netapp-file-backup")
    check_network_policy(objs)
    check_same_env(objs)


def test_openshift_variants_agree() -> None:
    """Deployment and CronJob templates share parameters, env and volume names."""
    (deploy,) = load_docs(OPENSHIFT / "db-backup-deploy.yml")
    (cron,) = load_docs(OPENSHIFT / "db-backup-cronjob.yml")
    d = {p["name"]: p.get("value") for p in deploy["parameters"]}
    c = {p["name"]: p.get("value") for p in cron["parameters"]}
    for name in set(d) & set(c) - {"NAME"}:
        assert d[name] == c[name], f"{name}: {d[name]!r} != {c[name]!r}"
    d_objs, c_objs = (
        template_objects("db-backup-deploy.yml"),
        template_objects("db-backup-cronjob.yml"),
    )
    check_same_env([one(d_objs, "Deployment"), *[o for o in c_objs if o["kind"] == "CronJob"]])


# --------------------------------------------------------------------------- kustomize


def check_k8s(objs: list[dict[str, Any]], *, cronjob: bool) -> None:
    for obj in objs:
        validate_any(obj)
    cm = one(objs, "ConfigMap")
    conf = parse_backup_conf(cm["data"]["backup.conf"], "deploy/k8s/base/backup.conf")
    assert [(s.host, s.database) for s in conf.specs] == [("mysql", "moodle")]
    for _, t in pod_specs(objs):
        (container,) = t["spec"]["containers"]
        assert container["image"] == "registry.example.com/moodle/moodump:latest"
        config_volume = next(v for v in t["spec"]["volumes"] if "configMap" in v)
        assert config_volume["configMap"]["name"] == cm["metadata"]["name"]
        assert t["spec"]["securityContext"]["runAsUser"] != 0
        assert t["spec"]["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    if cronjob:
        assert not [o for o in objs if o["kind"] == "Deployment"]
        check_cronjob(one(objs, "CronJob", "db-backup"), verify=False)
        check_cronjob(one(objs, "CronJob", "db-backup-verify"), verify=True)
        check_same_env(objs)
    else:
        check_deployment(one(objs, "Deployment"))
    check_pvcs(objs, storage_class=None)
    check_network_policy(objs)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomize_renders_valid_manifests(path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomization offline")
    res = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    objs = [d for d in yaml.safe_load_all(res.stdout) if d]
    check_k8s(objs, cronjob=path.name == "cronjob")


def test_k8s_files_validate_without_kustomize() -> None:
    """The same checks on the raw files, so they run where kubectl is missing too."""
    for path in K8S_YAML:
        for doc in load_docs(path):
            if doc.get("kind") == "Kustomization":
                assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
                for res in doc.get("resources", []):
                    assert (path.parent / res).exists(), f"{path}: missing {res}"
                continue
            validate_any(doc)
    check_deployment(one(load_docs(K8S / "base" / "deployment.yaml"), "Deployment"))
    crons = load_docs(K8S / "overlays" / "cronjob" / "cronjob.yaml")
    check_cronjob(one(crons, "CronJob", "db-backup"), verify=False)
    check_cronjob(one(crons, "CronJob", "db-backup-verify"), verify=True)
    deploy = one(load_docs(K8S / "base" / "deployment.yaml"), "Deployment")
    check_same_env([deploy, *crons])


def test_secret_example_holds_placeholders_only() -> None:
    secrets = load_docs(K8S / "base" / "secret.example.yaml")
    assert {s["metadata"]["name"] for s in secrets} == {
        "moodle-secrets", "db-backup-webhook", "ftp-secret",
    }  # fmt: skip
    for s in secrets:
        for value in s["stringData"].values():
            assert "CHANGE-ME" in value or "example.com" in value, value
    base = load_docs(K8S / "base" / "kustomization.yaml")[0]
    assert "secret.example.yaml" not in base["resources"], "never apply placeholders"


def test_openshift_and_k8s_agree() -> None:
    """One pod contract: the same variables, mounts and probes on both platforms."""
    os_deploy = one(template_objects("db-backup-deploy.yml"), "Deployment")
    k8s_deploy = one(load_docs(K8S / "base" / "deployment.yaml"), "Deployment")
    a = os_deploy["spec"]["template"]["spec"]["containers"][0]
    b = k8s_deploy["spec"]["template"]["spec"]["containers"][0]
    assert set(env_names(b)) <= set(env_names(a))
    assert [m["mountPath"] for m in a["volumeMounts"]] == [
        m["mountPath"] for m in b["volumeMounts"]
    ]
    assert a["livenessProbe"] == b["livenessProbe"]
    assert a["readinessProbe"] == b["readinessProbe"]


# --------------------------------------------------------------------------- monitoring

#: Alerts deploy/k8s/monitoring must define (issue 13).
REQUIRED_ALERTS = {"MoodumpNoVerifiedBackup", "MoodumpBackupFailed", "MoodumpBackupShrank"}
#: PromQL words the alert expressions may use besides moodump's metric names.
PROMQL_WORDS = {
    "time", "and", "or", "unless", "bool", "on", "ignoring", "by", "without",
    "group_left", "group_right", "max", "min", "sum", "count", "absent", "offset",
    "max_over_time", "min_over_time", "increase", "changes", "resets",
}  # fmt: skip
_PROMQL_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|\[[0-9]+[smhdwy]\]|[0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?'
    r"|[a-zA-Z_:][a-zA-Z0-9_:]*|==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},\[\]\s]"
)


def promql_identifiers(expr: str) -> list[str]:
    """The names in a PromQL expression, after checking that it is made only of known
    token kinds and that its brackets balance (outside string literals)."""
    pos, names, stack = 0, [], []
    pairs = {")": "(", "]": "[", "}": "{"}
    while pos < len(expr):
        m = _PROMQL_TOKEN.match(expr, pos)
        assert m, f"unexpected text in {expr!r} at {expr[pos:]!r}"
        tok = m.group(0)
        pos = m.end()
        if tok in "([{":
            stack.append(tok)
        elif tok in pairs:
            assert stack and stack.pop() == pairs[tok], f"unbalanced {tok!r} in {expr!r}"
        elif re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", tok):
            names.append(tok)
    assert not stack, f"unclosed {stack} in {expr!r}"
    return names


def test_promql_check_catches_mistakes() -> None:
    """Guard: the minimal PromQL check rejects what it is there to reject."""
    assert promql_identifiers('time() - max by (database) (x{a="(("}) > 26 * 3600') == [
        "time", "max", "by", "database", "x", "a",
    ]  # fmt: skip
    for bad in ("time() - (x > 1", 'x{a="b"', "rate(x[5m]))", "x ? 1"):
        with pytest.raises(AssertionError):
            promql_identifiers(bad)


def monitoring_objects() -> list[dict[str, Any]]:
    (kustomization,) = load_docs(MONITORING / "kustomization.yaml")
    return [d for res in kustomization["resources"] for d in load_docs(MONITORING / res)]


def test_monitoring_objects_validate_offline() -> None:
    objs = monitoring_objects()
    assert {(o["apiVersion"], o["kind"]) for o in objs} >= set(CRD_SCHEMAS)
    for obj in objs:
        validate_any(obj)


def test_crd_schemas_are_strict() -> None:
    """Guard: a misspelt field or a bad duration fails the offline validation."""
    monitor = one(monitoring_objects(), "PodMonitor")
    broken = copy.deepcopy(monitor)
    broken["spec"]["podMetricsEndpoints"][0]["intervall"] = "60s"
    with pytest.raises(jsonschema.ValidationError):
        validate_any(broken)
    rule = one(monitoring_objects(), "PrometheusRule")
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "15 minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate_any(broken)


def test_alerts_use_the_metrics_moodump_exports() -> None:
    rule = one(monitoring_objects(), "PrometheusRule")
    exported = sample_names()
    alerts = {}
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            alerts[r["alert"]] = r
            names = promql_identifiers(r["expr"])
            metrics = [n for n in names if n.startswith("moodump_")]
            assert metrics, f"{r['alert']} uses no moodump metric"
            for n in names:
                assert n in exported or n in PROMQL_WORDS, f"{r['alert']}: unknown name {n}"
            assert r["labels"]["severity"] in ("critical", "warning")
            assert r["annotations"]["summary"] and r["annotations"]["description"]
    assert set(alerts) >= REQUIRED_ALERTS
    # "no verified backup in 26 h" is the default MOODUMP_MAX_AGE of moodump check
    assert "26 * 3600" in alerts["MoodumpNoVerifiedBackup"]["expr"]
    assert "0.5 *" in alerts["MoodumpBackupShrank"]["expr"]


def test_pod_monitor_scrapes_the_metrics_port_of_the_cron_mode_pod() -> None:
    objs = monitoring_objects()
    monitor = one(objs, "PodMonitor")
    deploy = one(load_docs(K8S / "base" / "deployment.yaml"), "Deployment")
    template = deploy["spec"]["template"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    assert ports[endpoint["port"]] == int(env["MOODUMP_METRICS_PORT"])
    # the NetworkPolicy opens exactly that port on those pods
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= selector.items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ports[endpoint["port"]]}]
    # the same port in the OpenShift Deployment
    os_deploy = one(template_objects("db-backup-deploy.yml"), "Deployment")
    (os_container,) = os_deploy["spec"]["template"]["spec"]["containers"]
    assert os_container["ports"] == container["ports"]


def test_monitoring_kustomization_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomization offline")
    res = subprocess.run([kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    objs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert {o["kind"] for o in objs} == {"PodMonitor", "PrometheusRule", "NetworkPolicy"}
    for obj in objs:
        validate_any(obj)


# --------------------------------------------------------------------------- commands

#: moodump command lines that the manifests, probes and backup.sh run.
USED_COMMANDS = [
    ("run",),
    ("run", "--once"),
    ("status", "--max-age"),
    ("config",),
    ("check", "--max-age"),
    ("list",),
    ("list", "--json"),
    ("prune",),
    ("verify",),
    ("restore", "--host", "--port", "--user", "--database", "--drop", "--yes", "--password-file"),
]


def test_used_commands_cover_the_manifests() -> None:
    """USED_COMMANDS lists every moodump command a container or probe runs."""
    objs = [o for name in ("db-backup-deploy.yml", "db-backup-cronjob.yml")
            for o in template_objects(name)]  # fmt: skip
    objs += [o for path in K8S_YAML for o in load_docs(path)]
    lines = []
    for _, template in pod_specs(objs):
        container = template["spec"]["containers"][0]
        lines.append(container["args"])
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in container:
                lines.append(container[probe]["exec"]["command"])
    used = {c[0] for c in USED_COMMANDS}
    for line in lines:
        if line[0] == "moodump":
            options = tuple(a for a in line[2:] if a.startswith("--"))
            assert (line[1], *options) in USED_COMMANDS or line[1] in used, line
    code = [ln for ln in (CONTAINER / "backup.sh").read_text().splitlines()
            if not ln.lstrip().startswith("#")]  # fmt: skip
    calls = re.findall(r"(?:^|exec|\$\()\s*moodump (\w+)", "\n".join(code), re.M)
    assert {"run", "list", "config", "prune", "verify"} <= set(calls)  # restore: via args=(...)
    for cmd in calls:
        assert cmd in used, cmd


@pytest.mark.parametrize("command", USED_COMMANDS, ids=" ".join)
def test_used_commands_exist(command: tuple[str, ...]) -> None:
    from moodump.cli import cli

    name, options = command[0], command[1:]
    if name == "run" and name not in cli.commands:
        pytest.skip("moodump run is not implemented yet (issue 4): the manifests depend on it")
    assert name in cli.commands, f"moodump {name} does not exist"
    known = {opt for p in cli.commands[name].params for opt in getattr(p, "opts", [])}
    for option in options:
        assert option in known, f"moodump {name} has no {option}"


# --------------------------------------------------------------------------- container


def test_containerfile_contract() -> None:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    env = containerfile_env()
    assert env["TZ"] == "PST8PDT"
    assert env["TMPDIR"] == "/var/lib/moodump-verify"
    assert env["HOME"].startswith("/home/")
    assert "COPY container/backup.sh /backup.sh" in text
    assert 'CMD ["moodump", "run"]' in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text
    assert re.search(r"^USER \$\{MOODUMP_UID\}$", text, re.M)
    assert re.search(r"^ARG MOODUMP_UID=[1-9][0-9]*$", text, re.M)
    assert re.search(r"^WORKDIR /$", text, re.M)
    # writable for any UID in group 0: the directories moodump writes
    for path in ("/backups", "/var/lib/moodump-verify", "/home/moodump"):
        assert re.search(rf"chmod -R g=u [^\n]*{re.escape(path)}", text), path
    for package in ("mariadb-server-core", "mariadb-client-core", "tzdata", "tini", "python3"):
        assert package in text
    # the connector range of pyproject.toml is what gets installed, and moodump's C
    # accelerator is built and must import (no silently slower image)
    assert "pip install --only-binary=:all: --no-binary=moodump /src" in text
    assert 'python -c "import moodump.db._speedups as s, sys; sys.exit(s.client_api())"' in text
    assert "COPY pyproject.toml setup.py ./" in text


def test_example_backup_conf_parses() -> None:
    conf = parse_backup_conf((ROOT / "examples" / "backup.conf").read_text(), "backup.conf")
    hosts = [s.host for s in conf.specs]
    assert any("." in h for h in hosts), "the example shows a host name with dots"
    kinds = {c.action.kind for c in conf.schedule}
    assert {"backup", "verify"} <= kinds
    assert any("skipped" in n for n in conf.notes), "the example shows a skipped typed line"


# --------------------------------------------------------------------------- examples


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_retention_example_keeps_quarter_ends(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("custom_retention.py")
    assert example.main(["--demo"]) == 0
    out = capsys.readouterr().out
    assert "kept by rule: daily 6, monthly 3, quarter_end 7, weekly 4; removed: 710" in out
    now = datetime(2026, 11, 24, 2, 0, tzinfo=ZoneInfo("America/Vancouver"))
    backups = example.demo_backups(now)
    policy = RetentionPolicy(monthly=3)
    base = retention_plan(backups, policy, now)
    custom = example.custom_plan(backups, policy, now, recent_months=3, years=2)
    # the custom policy only turns removals into keeps: every built-in guarantee holds
    assert {b.id for b in base.keep} <= {b.id for b in custom.keep}
    extra = [d for d in custom.decisions if d.rule == "quarter_end"]
    assert [d.backup.when.strftime("%Y-%m") for d in extra] == [
        "2026-06", "2026-03", "2025-12", "2025-09", "2025-06", "2025-03", "2024-12",
    ]  # fmt: skip


def test_dump_and_verify_example(
    root_settings: ConnSettings, fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The library example against the real test server, verified by a local restore."""
    with connect(root_settings.with_database(fresh_db)) as c:
        c.execute("CREATE TABLE course (id INT PRIMARY KEY, fullname VARCHAR(50))")
        c.execute("INSERT INTO course VALUES (1, 'Site home'), (2, 'Chemistry \U0001f9ea')")
    example = load_example("dump_and_verify.py")
    out_dir = tmp_path / "backup"
    args = ["--host", root_settings.host, "--port", str(root_settings.port)]
    args += ["--user", root_settings.user, "--database", fresh_db, "--output", str(out_dir)]
    assert example.main([*args, "--local"]) == 0
    out = capsys.readouterr().out
    assert "1 tables, 2 rows" in out and "status DONE" in out
    assert "verify: PASS (restore): 1 tables, 2 rows checked" in out
    assert read_verify_record(out_dir) is not None
    assert read_verify_record(out_dir).passed


@pytest.mark.skipif(
    os.environ.get("MOODUMP_TEST_IMAGE_BUILD") != "1",
    reason="builds the image (minutes, needs podman/buildah/mmdebstrap): "
    "set MOODUMP_TEST_IMAGE_BUILD=1",
)
def test_image_build(tmp_path: Path) -> None:
    store = Path(os.environ.get("MOODUMP_TEST_IMAGE_STORE", tmp_path / "store"))
    cmd = [
        "bash",
        str(CONTAINER / "build-local.sh"),
        "-s",
        str(store),
        "-t",
        "localhost/moodump:test",
    ]
    if any(Path("/usr/local/share/ca-certificates").glob("*.crt")):
        cmd.append("--host-ca")  # a TLS-inspecting proxy between the build and PyPI
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "built and checked localhost/moodump:test" in res.stdout
    assert "in /var/lib/moodump-verify passed" in res.stdout
    assert "C extension" in res.stdout
