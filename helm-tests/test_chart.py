#!/usr/bin/env python3
"""Tests of the otpgate Helm chart (helm/otpgate) with the real Helm SDK.

    python3 helm-tests/test_chart.py [-k SUBSTRING] [-v]

Helm comes from the PyPI package `helm-python-sdk` (import `helm_python`): its wheel bundles
libhelm_c, a C ABI over Helm's own Go SDK (v4), loaded with ctypes. Lint, schema validation and
rendering are Helm's code, offline: no `helm` binary, no cluster, no network.

The rendered policy files are checked by the real gateway: `otpgate check` (binary from
$OTPGATE_BIN, default target/debug/otpgate; `cargo build --bin otpgate` makes it).

Prints one line per test and a closing `N passed, N failed` line; exits 1 if any test failed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - environment problem, not a test failure
    sys.exit("helm_python is missing: python3 -m pip install helm-python-sdk")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "otpgate"
POLICIES = ROOT / "policies"
SHIPPED = ["citizens.yaml", "gateway.yaml", "profiles.yaml", "routes.yaml"]
OTPGATE_BIN = Path(os.environ.get("OTPGATE_BIN", "target/debug/otpgate"))
if not OTPGATE_BIN.is_absolute():
    OTPGATE_BIN = ROOT / OTPGATE_BIN

REGISTRY_URL = "http://registry.cowin.svc.cluster.local:8000"
WEBHOOK_URL = "https://sms-relay.notify.svc.cluster.local/v1/otp"

# The values the chart has no default for (on purpose: they name where personal data and OTPs
# go, and which image runs). "Default values" below means the chart's values.yaml plus these.
REQUIRED = {
    "image": {"repository": "registry.example.org/platform/otpgate"},
    "upstream": {"registryUrl": REGISTRY_URL},
    "otp": {"webhookUrl": WEBHOOK_URL},
}

# Everything the default render does not exercise.
NON_DEFAULT = {
    "replicaCount": 4,
    "autoscaling": {"enabled": False},
    "partners": {
        "enabled": True,
        "caSecret": {"existingSecret": "partner-ca-prod", "crl": True},
        "clients": {
            "icmr": {
                "enabled": True,
                "certificate": {"spki_sha256": base64.b64encode(b"\x01" * 32).decode()},
                "api_key_sha256": hashlib.sha256(b"not a real key").hexdigest(),
                "source": ["203.0.113.0/24"],
                "scopes": ["beneficiaries:search", "beneficiaries:export"],
                "profile": "research",
                "quota": {"requests": {"limit": 600, "window": "1m"}, "subjects_per_day": 1000},
            }
        },
    },
    "audit": {"persistence": {"enabled": False}},
    "serviceMonitor": {"enabled": True},
    "keys": {"existingSecret": "otpgate-keys-prod"},
    "store": {"existingSecret": "redis-credentials", "existingSecretKey": "otpgate-url", "prefix": "otpgate:prod:"},
    "otel": {"endpoint": "http://otel-collector.observability.svc:4317", "protocol": "grpc"},
    "networkPolicy": {
        "egress": {
            "registry": {"cidrs": ["10.20.0.0/16"]},
            "store": {"cidrs": ["10.30.1.0/24"], "ports": [{"port": 6380, "protocol": "TCP"}]},
            "otpWebhook": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "notify"}}}]},
            "otel": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]},
        }
    },
}

SECURITY_FIELDS_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
SECURITY_FIELDS_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# --- helpers ------------------------------------------------------------------------------------


def merged(*layers: dict) -> dict:
    """Deep merge of value layers (later wins), without touching the inputs."""
    out: dict = {}
    for layer in layers:
        _merge_into(out, copy.deepcopy(layer))
    return out


def _merge_into(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value)
        else:
            dst[key] = value


def render_raw(values: dict) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name="otpgate", namespace="gateway")


class Release:
    """A rendered release: its parsed objects, NOTES.txt, and the values it was rendered with."""

    def __init__(self, values: dict):
        self.raw = render_raw(values)
        with helm.Chart.load(CHART) as chart:
            self.values = chart.merge_values(values)  # what the release uses: defaults + overrides
        self.notes = ""
        self.objects: list[dict] = []
        for template, text in self.raw.items():
            if template.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in re.split(r"(?m)^---[ \t]*$", text):
                if not doc.strip():
                    continue
                obj = helm.values_from_yaml(doc)
                if obj:
                    obj["__template"] = template
                    self.objects.append(obj)

    def all(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
        return found[0]

    def has(self, kind: str, name: str | None = None) -> bool:
        return any(name is None or o["metadata"]["name"] == name for o in self.all(kind))

    @property
    def deployment(self) -> dict:
        return self.one("Deployment")

    @property
    def pod(self) -> dict:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict:
        containers = self.pod["containers"]
        assert len(containers) == 1, containers
        return containers[0]

    def env(self, name: str) -> dict | None:
        for e in self.container.get("env", []):
            if e["name"] == name:
                return e
        return None

    def policy_files(self) -> dict[str, str]:
        return self.one("ConfigMap", "otpgate-policies")["data"]


def render(*layers: dict) -> Release:
    return Release(merged(*layers))


def refused(values: dict, *needles: str) -> str:
    """Render must fail, naming every needle; returns the message."""
    try:
        render_raw(values)
    except helm.HelmError as e:
        message = str(e)
        for needle in needles:
            assert needle in message, f"refusal does not mention {needle!r}: {message}"
        return message
    raise AssertionError(f"the chart rendered values it must refuse ({', '.join(needles)})")


def sub_dict(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert key in actual, f"missing {key!r} in {actual}"
        assert actual[key] == value, f"{key}: {actual[key]!r} != {value!r}"


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def otpgate(*args: str, check_rc: bool = True) -> subprocess.CompletedProcess:
    if not OTPGATE_BIN.exists():
        raise AssertionError(f"{OTPGATE_BIN} does not exist: run `cargo build --bin otpgate` (or set OTPGATE_BIN)")
    proc = subprocess.run([str(OTPGATE_BIN), *args], capture_output=True, text=True, timeout=120)
    if check_rc:
        assert proc.returncode == 0, f"otpgate {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc


def write_dir(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        assert "/" not in name and not name.startswith("."), name
        data = content.encode() if isinstance(content, str) else content
        (directory / name).write_bytes(data)
    return directory


def secret_files(secret: dict) -> dict[str, bytes]:
    files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    files.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return files


class Skip(Exception):
    """A test that cannot run here (says why); counted, never silent."""


# --- PKI for the partner CA and the server certificate ------------------------------------------


class Pki:
    """A partner CA with a CRL, a partner leaf, and a server certificate: PEM strings."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        try:
            if os.environ.get("HELM_TESTS_NO_CRYPTOGRAPHY"):
                raise ImportError("disabled by HELM_TESTS_NO_CRYPTOGRAPHY")
            self._with_cryptography()
            self.how = "python cryptography"
        except ImportError:
            if not shutil.which("openssl"):
                raise Skip("neither python cryptography nor openssl is available to make certificates")
            self._with_openssl()
            self.how = "openssl"

    def _with_cryptography(self) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        later = now + datetime.timedelta(days=2)

        def name(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otpgate chart test"),
                              x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def pem(cert: x509.Certificate) -> str:
            return cert.public_bytes(serialization.Encoding.PEM).decode()

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(name("partner CA")).issuer_name(name("partner CA"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(later)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                           crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        revoked = (x509.RevokedCertificateBuilder().serial_number(12345).revocation_date(now).build())
        crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
               .next_update(later).add_revoked_certificate(revoked)
               .add_extension(x509.CRLNumber(1), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        spki = leaf_key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = (x509.CertificateBuilder().subject_name(name("otpgate")).issuer_name(name("otpgate"))
                  .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
                  .not_valid_before(now).not_valid_after(later)
                  .add_extension(x509.SubjectAlternativeName([x509.DNSName("otpgate.gateway.svc")]), critical=False)
                  .sign(server_key, hashes.SHA256()))
        self.ca_pem = pem(ca)
        self.crl_pem = crl.public_bytes(serialization.Encoding.PEM).decode()
        self.partner_pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        self.server_cert = pem(server)
        self.server_key = server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()).decode()

    def _with_openssl(self) -> None:
        d = self.tmp / "openssl"
        d.mkdir()

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/O=otpgate chart test/CN=partner CA",
            "-addext", "basicConstraints=critical,CA:true,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        (d / "index.txt").write_text("")
        (d / "crlnumber").write_text("01\n")
        (d / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                                  "default_md = sha256\ndefault_crl_days = 2\n")
        run("ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-out", "crl.pem")
        run("req", "-x509", *ec, "-keyout", "server.key", "-out", "server.pem", "-subj", "/CN=otpgate",
            "-addext", "subjectAltName=DNS:otpgate.gateway.svc")
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "leaf.key")
        run("pkey", "-in", "leaf.key", "-pubout", "-outform", "DER", "-out", "leaf.spki")
        self.ca_pem = (d / "ca.pem").read_text()
        self.crl_pem = (d / "crl.pem").read_text()
        self.partner_pin = base64.b64encode(hashlib.sha256((d / "leaf.spki").read_bytes()).digest()).decode()
        self.server_cert = (d / "server.pem").read_text()
        self.server_key = (d / "server.key").read_text()


# --- the tests ------------------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def lint_is_clean_in_strict_mode():
    allowed_info = {"icon is recommended"}
    for label, values in [("default", REQUIRED), ("non-default", merged(REQUIRED, NON_DEFAULT))]:
        report = helm.lint(CHART, values, strict=True)
        assert report["total_charts_linted"] == 1, report
        assert not report["errors"], f"{label}: lint errors {report['errors']}"
        problems = [m for m in report["messages"] if m["severity"] >= 2 or m["error"] not in allowed_info]
        assert not problems, f"{label}: lint findings {problems}"


@test
def schema_accepts_the_values_and_rejects_wrong_types():
    with helm.Chart.load(CHART) as chart:
        assert chart.schema is not None, "values.schema.json is missing"
        chart.validate_schema(REQUIRED)
        chart.validate_schema(merged(REQUIRED, NON_DEFAULT))
        for bad, where in [
            ({"replicaCount": "two"}, "/replicaCount"),
            ({"gateway": {"drainSeconds": "30s"}}, "/gateway/drainSeconds"),
            ({"store": {"url": "http://redis:6379"}}, "/store/url"),
            ({"otel": {"protocol": "udp"}}, "/otel/protocol"),
            ({"topologySpread": {"zone": {"whenUnsatisfiable": "Sometimes"}}}, "/topologySpread/zone"),
            ({"allowSingleReplicas": True}, "allowSingleReplicas"),  # a typo is an error, not ignored
            ({"partners": {"caMountPath": "relative/dir"}}, "/partners/caMountPath"),
        ]:
            try:
                chart.validate_schema(merged(REQUIRED, bad))
            except helm.HelmValuesError as e:
                assert where in str(e), f"schema error for {bad} does not point at {where}: {e}"
            else:
                raise AssertionError(f"schema accepted {bad}")


@test
def values_without_defaults_are_required():
    refused({}, "image.repository is required")
    refused(merged(REQUIRED, {"upstream": {"registryUrl": ""}}), "upstream.registryUrl is required")
    refused(merged(REQUIRED, {"otp": {"webhookUrl": ""}}), "otp.webhookUrl is required")


@test
def default_render_has_at_least_two_replicas_under_an_hpa():
    r = render(REQUIRED)
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2", hpa["apiVersion"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": r.deployment["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["minReplicas"] == 2, hpa["spec"]
    assert hpa["spec"]["maxReplicas"] == 10, hpa["spec"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu", metric
    # The HPA owns the count: a `replicas` field would be reset by every `helm upgrade`.
    assert "replicas" not in r.deployment["spec"], r.deployment["spec"].get("replicas")
    # Without the HPA the Deployment carries the count, and it is at least 2.
    plain = render(REQUIRED, {"autoscaling": {"enabled": False}})
    assert plain.deployment["spec"]["replicas"] == 2
    assert not plain.has("HorizontalPodAutoscaler")


@test
def a_single_replica_is_refused():
    refused(merged(REQUIRED, {"replicaCount": 1}), "replicaCount is 1", "allowSingleReplica")
    refused(merged(REQUIRED, {"replicaCount": 1, "autoscaling": {"enabled": False}}), "replicaCount is 1")
    refused(merged(REQUIRED, {"autoscaling": {"minReplicas": 1}}), "autoscaling.minReplicas is 1")
    # Explicitly allowed (development): renders, and the PDB must then not block every drain.
    refused(merged(REQUIRED, {"replicaCount": 1, "allowSingleReplica": True, "autoscaling": {"enabled": False}}),
            "podDisruptionBudget.minAvailable")
    dev = render(REQUIRED, {"replicaCount": 1, "allowSingleReplica": True, "autoscaling": {"enabled": False},
                            "podDisruptionBudget": {"enabled": False}})
    assert dev.deployment["spec"]["replicas"] == 1


@test
def replicas_spread_over_hosts_and_zones():
    for values in (REQUIRED, merged(REQUIRED, NON_DEFAULT)):
        r = render(values)
        pod_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
        constraints = {c["topologyKey"]: c for c in r.pod["topologySpreadConstraints"]}
        assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, constraints
        host, zone = constraints["kubernetes.io/hostname"], constraints["topology.kubernetes.io/zone"]
        assert host["whenUnsatisfiable"] == "DoNotSchedule", host
        assert zone["whenUnsatisfiable"] == "ScheduleAnyway", zone
        for c in (host, zone):
            assert c["maxSkew"] == 1, c
            assert labels_match(c["labelSelector"]["matchLabels"], pod_labels), (c, pod_labels)
            # Cordoned/tainted nodes must not count, or a drain deadlocks DoNotSchedule.
            assert c["nodeTaintsPolicy"] == "Honor", c
            assert c["matchLabelKeys"] == ["pod-template-hash"], c


@test
def every_security_context_field_is_set():
    for values in (REQUIRED, merged(REQUIRED, NON_DEFAULT)):
        r = render(values)
        sub_dict(r.pod["securityContext"], SECURITY_FIELDS_POD)
        assert r.pod["securityContext"]["fsGroup"] == 65532
        sub_dict(r.container["securityContext"], SECURITY_FIELDS_CONTAINER)
        assert r.container["securityContext"].get("privileged") in (None, False)
        assert "add" not in r.container["securityContext"]["capabilities"]
        assert r.pod["automountServiceAccountToken"] is False
        # Service links would inject OTPGATE_* variables (flags are read from OTPGATE_*).
        assert r.pod["enableServiceLinks"] is False
        for v in r.pod["volumes"]:
            assert "hostPath" not in v, v
        assert not r.pod.get("hostNetwork") and not r.pod.get("hostPID") and not r.pod.get("hostIPC")
        # A read-only root needs a writable /tmp.
        mounts = {m["mountPath"]: m["name"] for m in r.container["volumeMounts"]}
        tmp = next(v for v in r.pod["volumes"] if v["name"] == mounts["/tmp"])
        assert "emptyDir" in tmp, tmp
        res = r.container["resources"]
        for part in ("requests", "limits"):
            assert res[part].get("cpu") and res[part].get("memory"), res


@test
def probes_use_the_admin_port():
    r = render(REQUIRED)
    ports = {p["name"]: p["containerPort"] for p in r.container["ports"]}
    assert ports == {"https": 8443, "admin": 9090}, ports

    def port_of(probe: dict) -> int:
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port

    live, ready = r.container["livenessProbe"], r.container["readinessProbe"]
    assert live["httpGet"]["path"] == "/healthz" and port_of(live) == 9090, live
    assert ready["httpGet"]["path"] == "/readyz" and port_of(ready) == 9090, ready
    assert port_of(r.container["startupProbe"]) == 9090
    args = r.container["args"]
    assert args[args.index("--admin") + 1] == "0.0.0.0:9090", args


@test
def the_grace_period_outlasts_the_drain():
    r = render(REQUIRED)
    grace = r.pod["terminationGracePeriodSeconds"]
    drain = r.values["gateway"]["drainSeconds"]
    pre_stop = r.container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert grace == 45 and drain == 30, (grace, drain)
    assert grace > drain + pre_stop, (grace, drain, pre_stop)
    assert re.search(r"(?m)^    drain: 30s ", r.policy_files()["gateway.yaml"])
    # The policy's drain follows the value.
    longer = render(REQUIRED, {"gateway": {"drainSeconds": 50}, "terminationGracePeriodSeconds": 60})
    assert re.search(r"(?m)^    drain: 50s ", longer.policy_files()["gateway.yaml"])
    assert longer.pod["terminationGracePeriodSeconds"] == 60
    # A grace period the drain does not fit in is refused.
    refused(merged(REQUIRED, {"terminationGracePeriodSeconds": 30}), "terminationGracePeriodSeconds (30)")
    refused(merged(REQUIRED, {"gateway": {"drainSeconds": 45}}), "must be greater than gateway.drainSeconds")
    refused(merged(REQUIRED, {"terminationGracePeriodSeconds": 33}), "lifecycle.preStopSleepSeconds")
    # A hand-written policy whose drain is not the value is refused too.
    gateway = (POLICIES / "gateway.yaml").read_text().replace("drain: 30s", "drain: 10s")
    assert "drain: 10s" in gateway
    refused(merged(REQUIRED, {"policies": {"shipped": False, "extraFiles": {"gateway.yaml": gateway}}}),
            "gateway.timeouts.drain is 10s")


@test
def the_container_runs_serve_with_the_store_from_a_secret():
    r = render(REQUIRED)
    assert r.container["args"] == [
        "serve", "--config", "/etc/otpgate/policies", "--keys-dir", "/etc/otpgate/keys",
        "--data-dir", "/var/lib/otpgate", "--listen", "0.0.0.0:8443",
        "--tls-cert", "/etc/otpgate/tls/tls.crt", "--tls-key", "/etc/otpgate/tls/tls.key",
        "--admin", "0.0.0.0:9090", "--upstream", f"registry={REGISTRY_URL}", "--log-format", "json",
    ], r.container["args"]
    assert "command" not in r.container  # the image's ENTRYPOINT is the binary
    store = r.env("OTPGATE_STORE")
    assert store is not None and "value" not in store, store
    assert store["valueFrom"]["secretKeyRef"] == {"name": "otpgate-store", "key": "url"}, store
    replica = r.env("OTPGATE_REPLICA_ID")
    assert replica["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", replica
    assert r.env("OTPGATE_STORE_PREFIX") is None
    assert r.env("OTEL_EXPORTER_OTLP_ENDPOINT") is None  # otel.endpoint empty = off
    # Until `serve` has the flags, these are environment only.
    assert not any(a.startswith(("--store", "--replica-id")) for a in r.container["args"])
    # Nothing secret is a literal.
    assert "redis" not in str(r.container.get("env"))
    # An existing Secret and key, a prefix; a chart-made Secret holds the URL and is checked.
    nd = render(REQUIRED, NON_DEFAULT)
    assert nd.env("OTPGATE_STORE")["valueFrom"]["secretKeyRef"] == {"name": "redis-credentials", "key": "otpgate-url"}
    assert nd.env("OTPGATE_STORE_PREFIX")["value"] == "otpgate:prod:"
    made = render(REQUIRED, {"store": {"create": True, "url": "rediss://:pw@redis.data.svc:6380/0"}})
    secret = made.one("Secret", "otpgate-store")
    assert secret_files(secret) == {"url": b"rediss://:pw@redis.data.svc:6380/0"}
    assert made.env("OTPGATE_STORE")["valueFrom"]["secretKeyRef"]["name"] == "otpgate-store"
    assert "checksum/secrets" in made.deployment["spec"]["template"]["metadata"]["annotations"]
    refused(merged(REQUIRED, {"store": {"create": True, "url": "http://redis:6379"}}), "/store/url")
    render(REQUIRED, {"store": {"create": True, "url": "redis+cluster://10.0.0.1:6379,10.0.0.2:6379"}})


@test
def the_policy_configmap_is_mounted_as_a_directory():
    for values in (REQUIRED, merged(REQUIRED, NON_DEFAULT)):
        r = render(values)
        cm = r.one("ConfigMap", "otpgate-policies")
        volume = next(v for v in r.pod["volumes"] if "configMap" in v)
        assert volume["configMap"]["name"] == cm["metadata"]["name"], volume
        assert "items" not in volume["configMap"], "items would pin the file list; mount the whole map"
        (mount,) = [m for m in r.container["volumeMounts"] if m["name"] == volume["name"]]
        assert "subPath" not in mount and "subPathExpr" not in mount, mount
        assert mount.get("readOnly") is True, mount
        args = r.container["args"]
        assert mount["mountPath"] == args[args.index("--config") + 1], (mount, args)
        # No checksum of the policy on the pod: a policy change must hot-reload, not restart.
        annotations = r.deployment["spec"]["template"]["metadata"].get("annotations") or {}
        assert not any("polic" in k or "config" in k for k in annotations), annotations
        for m in r.container["volumeMounts"]:
            assert "subPath" not in m, m


@test
def shipped_policies_are_the_repositorys_except_delivery_and_drain():
    files = render(REQUIRED).policy_files()
    assert sorted(files) == sorted(SHIPPED), sorted(files)
    for name in ("profiles.yaml", "routes.yaml"):
        assert files[name] == (POLICIES / name).read_text(), f"{name} differs from policies/{name}"
    repo_gateway = (POLICIES / "gateway.yaml").read_text()
    assert files["gateway.yaml"] == repo_gateway, "gateway.yaml differs from policies/gateway.yaml"
    citizens = files["citizens.yaml"].splitlines()
    repo_citizens = (POLICIES / "citizens.yaml").read_text().splitlines()
    assert len(citizens) == len(repo_citizens)
    changed = [(a, b) for a, b in zip(repo_citizens, citizens) if a != b]
    assert len(changed) == 1, changed
    original, rendered = changed[0]
    assert original.strip().startswith("webhook:"), original
    assert rendered.strip().startswith(f'webhook: {{url: "{WEBHOOK_URL}", timeout: 3s}}'), rendered
    assert not any(l.strip().startswith("outbox:") for l in citizens), "no plain-text outbox delivery"
    # The chart's copy differs from the repository's in exactly the two templated lines.
    diffs = 0
    for name in SHIPPED:
        ours = (CHART / "files" / "policies" / name).read_text().splitlines()
        theirs = (POLICIES / name).read_text().splitlines()
        assert len(ours) == len(theirs), name
        diffs += sum(a != b for a, b in zip(ours, theirs))
    assert diffs == 2, diffs


@test
def extra_policy_files_are_added_and_collisions_refused():
    extra = {"zz-local.yaml": "routes:\n  - {name: local-states, methods: [GET], path: /api/v2/local/states, "
                              "access: public, upstream: registry}\n"}
    r = render(REQUIRED, {"policies": {"extraFiles": extra}})
    assert r.policy_files()["zz-local.yaml"] == extra["zz-local.yaml"]
    refused(merged(REQUIRED, {"policies": {"extraFiles": {"routes.yaml": "routes: []\n"}}}),
            "would replace a shipped policy file")
    refused(merged(REQUIRED, {"policies": {"extraFiles": {"../evil.yaml": "routes: []\n"}}}),
            "is not a policy file name")


@test
def rendered_policies_keys_and_tls_pass_otpgate_check():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        note = None
        # Real keys from the real generator, through a chart-created Secret, back to files.
        otpgate("keys", "generate", "--dir", str(tmp / "generated"))
        key_files = {p.name: p.read_text() for p in (tmp / "generated").iterdir()}
        try:
            pki: Pki | None = Pki(tmp)
        except Skip as why:
            pki, note = None, f"server certificate not checked: {why}"
        extra = {"zz-local.yaml": "routes:\n  - {name: local-states, methods: [GET], path: /api/v2/local/states, "
                                  "access: public, upstream: registry}\n"}
        tls_values = {"create": True, "cert": pki.server_cert, "key": pki.server_key} if pki else {}
        r = render(REQUIRED, {"keys": {"create": True, "files": key_files}, "tls": tls_values,
                              "policies": {"extraFiles": extra}})
        config = write_dir(tmp / "policies", r.policy_files())
        keys = write_dir(tmp / "keys", secret_files(r.one("Secret", "otpgate-keys")))
        args = r.container["args"]
        check = ["check", "--config", str(config), "--keys-dir", str(keys),
                 "--upstream", args[args.index("--upstream") + 1]]
        if pki:
            tls_secret = r.one("Secret", "otpgate-tls")
            assert tls_secret["type"] == "kubernetes.io/tls"
            tls = write_dir(tmp / "tls", secret_files(tls_secret))
            assert args[args.index("--tls-cert") + 1].endswith("/tls.crt")
            check += ["--tls-cert", str(tls / "tls.crt"), "--tls-key", str(tls / "tls.key")]
        out = otpgate(*check)
        assert out.stdout.startswith("ok: 26 routes"), out.stdout
        assert "keys not checked" not in out.stdout + out.stderr, out.stdout + out.stderr
        if pki:
            assert "not checked" not in out.stdout + out.stderr, out.stdout + out.stderr
        # The check really reads the rendered files: a broken render fails it.
        (config / "gateway.yaml").write_text(r.policy_files()["gateway.yaml"].replace("drain: 30s", "drain: soon"))
        assert otpgate("check", "--config", str(config), check_rc=False).returncode == 1
    return note


@test
def partners_policy_with_its_ca_and_crl_passes_otpgate_check():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pki = Pki(tmp)
        ca_dir = tmp / "partner-ca"  # stands in for the Secret mount: partners.caMountPath
        client = copy.deepcopy(NON_DEFAULT["partners"]["clients"]["icmr"])
        client["certificate"] = {"spki_sha256": pki.partner_pin}
        r = render(REQUIRED, NON_DEFAULT, {"partners": {
            "caMountPath": str(ca_dir),
            "caSecret": {"existingSecret": "", "create": True, "caPem": pki.ca_pem, "crlPem": pki.crl_pem},
            "clients": {"icmr": client},
        }})
        files = r.policy_files()
        assert f'ca: ["{ca_dir}/ca.pem"]' in files["partners.yaml"], files["partners.yaml"]
        assert f'crl: ["{ca_dir}/crl.pem"]' in files["partners.yaml"], files["partners.yaml"]
        # Lay the Secret out the way the pod's volume does (its items), then check.
        secret = secret_files(r.one("Secret", "otpgate-partner-ca"))
        volume = next(v for v in r.pod["volumes"] if v["name"] == "partner-ca")
        (mount,) = [m for m in r.container["volumeMounts"] if m["name"] == "partner-ca"]
        assert mount["mountPath"] == str(ca_dir)
        write_dir(ca_dir, {item["path"]: secret[item["key"]] for item in volume["secret"]["items"]})
        assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.pem", "crl.pem"]
        config = write_dir(tmp / "policies", files)
        out = otpgate("check", "--config", str(config))
        assert out.stdout.startswith("ok: 25 routes"), out.stdout
        # The CA file really is read: without it the same policy fails.
        (ca_dir / "ca.pem").unlink()
        failed = otpgate("check", "--config", str(config), check_rc=False)
        assert failed.returncode == 1 and "ca.pem" in failed.stdout + failed.stderr, failed
    return f"partner CA and CRL made with {pki.how}"


@test
def partners_get_a_listener_and_service_only_when_enabled():
    off = render(REQUIRED)
    assert not off.has("Service", "otpgate-partner")
    assert "--listen-partner" not in off.container["args"]
    assert "partners.yaml" not in off.policy_files()
    assert not any(v["name"] == "partner-ca" for v in off.pod["volumes"])
    np_ports = [p["port"] for rule in off.one("NetworkPolicy")["spec"]["ingress"] for p in rule["ports"]]
    assert 8444 not in np_ports, np_ports

    on = render(REQUIRED, NON_DEFAULT)
    svc = on.one("Service", "otpgate-partner")
    (port,) = svc["spec"]["ports"]
    assert port["targetPort"] == "partner" and port["port"] == 8444, port
    assert {"name": "partner", "containerPort": 8444, "protocol": "TCP"} in on.container["ports"]
    args = on.container["args"]
    assert args[args.index("--listen-partner") + 1] == "0.0.0.0:8444", args
    assert labels_match(svc["spec"]["selector"], on.deployment["spec"]["template"]["metadata"]["labels"])
    volume = next(v for v in on.pod["volumes"] if v["name"] == "partner-ca")
    assert volume["secret"]["secretName"] == "partner-ca-prod"
    assert [i["path"] for i in volume["secret"]["items"]] == ["ca.pem", "crl.pem"]
    partners = on.policy_files()["partners.yaml"]
    assert 'ca: ["/etc/otpgate/partner-ca/ca.pem"]' in partners, partners
    np_ports = [p["port"] for rule in on.one("NetworkPolicy")["spec"]["ingress"] for p in rule["ports"]]
    assert 8444 in np_ports, np_ports


@test
def admin_port_only_on_a_cluster_ip_service():
    for values in (REQUIRED, merged(REQUIRED, NON_DEFAULT)):
        r = render(values)
        admin = r.one("Service", "otpgate-admin")
        assert admin["spec"]["type"] == "ClusterIP", admin["spec"]
        assert [p["targetPort"] for p in admin["spec"]["ports"]] == ["admin"]
        for svc in r.all("Service"):
            if svc is admin:
                continue
            for p in svc["spec"]["ports"]:
                assert p["targetPort"] not in ("admin", 9090) and p["port"] != 9090, (svc["metadata"]["name"], p)
        public = r.one("Service", "otpgate")
        assert [(p["port"], p["targetPort"]) for p in public["spec"]["ports"]] == [(443, "https")]
        assert public["spec"]["externalTrafficPolicy"] == "Local"  # client addresses for per-IP limits


@test
def service_monitor_only_when_enabled_and_it_scrapes_the_admin_service():
    assert not render(REQUIRED).has("ServiceMonitor")
    r = render(REQUIRED, NON_DEFAULT)
    sm = r.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics", endpoint
    selected = [s["metadata"]["name"] for s in r.all("Service")
                if labels_match(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert selected == ["otpgate-admin"], selected


@test
def dashboard_configmap_for_the_grafana_sidecar_and_optional_prometheus_rule():
    monitoring = CHART / "files" / "monitoring"
    r = render(REQUIRED)
    cm = r.one("ConfigMap", "otpgate-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]["labels"]
    shipped = json.loads((monitoring / "otpgate-dashboard.json").read_text())
    assert json.loads(cm["data"]["otpgate-dashboard.json"]) == shipped, "the repository's dashboard, unchanged"
    assert not r.has("PrometheusRule"), "needs the operator's CRD: off by default"
    off = render(REQUIRED, {"grafanaDashboard": {"enabled": False}})
    assert not off.has("ConfigMap", "otpgate-dashboard")
    on = render(REQUIRED, {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}},
                           "grafanaDashboard": {"namespace": "monitoring", "annotations": {"grafana_folder": "otpgate"}}})
    rule = on.one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["metadata"]["labels"]["release"] == "kps"
    plain = helm.values_from_yaml((monitoring / "otpgate-rules.yaml").read_text())
    assert rule["spec"]["groups"] == plain["groups"], "the plain rules file's groups, unchanged"
    cm = on.one("ConfigMap", "otpgate-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring" and cm["metadata"]["annotations"] == {"grafana_folder": "otpgate"}


@test
def pdb_hpa_and_network_policy_are_present():
    r = render(REQUIRED)
    pod_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    pdb = r.one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["minAvailable"] == 1, pdb
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert r.has("HorizontalPodAutoscaler")
    np = r.one("NetworkPolicy")
    assert labels_match(np["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    rules = {tuple(p["port"] for p in rule["ports"]): rule for rule in np["spec"]["ingress"]}
    assert set(rules) == {(8443,), (9090,)}, rules
    assert "from" not in rules[(8443,)]  # internet-facing by default
    (peer,) = rules[(9090,)]["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}, peer
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}, peer
    # Egress: DNS only until destinations are given (fail closed), and NOTES says so.
    (dns,) = np["spec"]["egress"]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert all(rule.get("to") for rule in np["spec"]["egress"]), "an egress rule without `to` allows anywhere"
    assert "allows no egress to: registry, store, otpWebhook" in r.notes, r.notes

    nd = render(REQUIRED, NON_DEFAULT)
    egress = nd.one("NetworkPolicy")["spec"]["egress"]
    by_port = {tuple(p["port"] for p in rule["ports"]): rule["to"] for rule in egress}
    assert by_port[(8000,)] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}], by_port  # registry, port from its URL
    assert by_port[(6380,)] == [{"ipBlock": {"cidr": "10.30.1.0/24"}}], by_port  # store
    assert (443,) in by_port and (4317,) in by_port, by_port  # webhook (https), OTLP
    assert all(rule.get("to") for rule in egress)
    assert "allows no egress" not in nd.notes
    assert not nd.has("HorizontalPodAutoscaler") and nd.has("PodDisruptionBudget")


@test
def non_default_values_render_as_asked():
    r = render(REQUIRED, NON_DEFAULT)
    assert r.deployment["spec"]["replicas"] == 4
    keys = next(v for v in r.pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == "otpgate-keys-prod" and keys["secret"]["defaultMode"] == 0o440, keys
    assert not r.all("Secret"), "existing Secrets must not be created by the chart"
    env = {e["name"]: e.get("value") for e in r.container["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["OTEL_SERVICE_NAME"] == "otpgate"
    # Persistence off: an emptyDir, no claim, and a loud warning.
    audit = next(v for v in r.pod["volumes"] if v["name"] == "audit")
    assert "emptyDir" in audit and "persistentVolumeClaim" not in audit, audit
    assert not r.has("PersistentVolumeClaim")
    assert "WARNING: audit.persistence.enabled is false" in r.notes and "LOST" in r.notes, r.notes


@test
def the_audit_trail_is_on_a_shared_persistent_volume_by_default():
    r = render(REQUIRED)
    pvc = r.one("PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], pvc["spec"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    audit = next(v for v in r.pod["volumes"] if v["name"] == "audit")
    assert audit["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"], audit
    (mount,) = [m for m in r.container["volumeMounts"] if m["name"] == "audit"]
    args = r.container["args"]
    assert mount["mountPath"] == args[args.index("--data-dir") + 1] == "/var/lib/otpgate", mount
    assert "audit.persistence.enabled is false" not in r.notes, r.notes
    refused(merged(REQUIRED, {"audit": {"persistence": {"accessModes": ["ReadWriteOnce"]}}}), "ReadWriteMany")
    mine = render(REQUIRED, {"audit": {"persistence": {"existingClaim": "audit-nfs"}}})
    assert not mine.has("PersistentVolumeClaim")
    assert next(v for v in mine.pod["volumes"] if v["name"] == "audit")["persistentVolumeClaim"]["claimName"] == "audit-nfs"


@test
def chart_created_keys_must_be_complete():
    refused(merged(REQUIRED, {"keys": {"create": True, "files": {"otp.key": "00"}}}), "keys.files must hold")
    refused(merged(REQUIRED, {"keys": {"create": True, "existingSecret": "x"}}), "not both")


# --- runner ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    selected = TESTS
    if "-k" in argv:
        pattern = argv[argv.index("-k") + 1]
        selected = [t for t in TESTS if pattern in t.__name__]
    # The library logs template `fail` calls at INFO; keep the output to the test lines.
    helm.enable_logging(logging.ERROR, logger=logging.getLogger("helm"))
    print(f"helm-python-sdk {helm.__version__} (libhelm_c {helm.helm_c_version()}, Helm SDK "
          f"{helm.helm_sdk_version()}); chart {CHART.relative_to(ROOT)}; otpgate {OTPGATE_BIN.relative_to(ROOT) if OTPGATE_BIN.is_relative_to(ROOT) else OTPGATE_BIN}")
    passed = failed = skipped = 0
    for fn in selected:
        started = time.monotonic()
        try:
            note = fn()
        except Skip as why:
            skipped += 1
            print(f"skip  {fn.__name__}: {why}")
        except Exception:  # noqa: BLE001 - every failure is reported, the run goes on
            failed += 1
            print(f"FAIL  {fn.__name__}")
            print("".join("      " + line for line in traceback.format_exc().splitlines(True)))
        else:
            passed += 1
            print(f"ok    {fn.__name__} ({time.monotonic() - started:.2f}s)" + (f": {note}" if note else ""))
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed or not selected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
