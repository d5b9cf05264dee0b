#!/usr/bin/env python3
"""Validates everything under deploy/ and every Dockerfile without a cluster or a Docker engine.

Each balancer config passes its own checker (envoy --mode validate, haproxy -c with warnings
fatal, nginx -t), the compose file parses (docker-compose config -q), the Kubernetes manifests
match the API schemas strictly (kubernetes-validate), every Dockerfile passes hadolint, and the
files agree with each other: every replica a balancer names is a compose service (or the
headless Service on Kubernetes), the Kubernetes Envoy config is deploy/envoy/envoy.yaml but for
its endpoints, and the drain timings, HAProxy's per-replica maxconn and the grace periods add up.

    .tools/bin/python tests/deploy/check_deploy.py              # exit 1 on any problem
    .tools/bin/python tests/deploy/check_deploy.py --self-test  # broken copies must be caught

Run with the interpreter scripts/setup.sh put in .tools/ (it has PyYAML).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, ".tools", "bin")
DEPLOY = os.path.join(ROOT, "deploy")


def tool(name):
    path = os.path.join(TOOLS, name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise SystemExit(f"{name} is not installed: run scripts/setup.sh")
    return found


def run(command, stdin=None):
    """Returns None when the command succeeds, else its output."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return None
    return f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}".strip()


def read(path):
    with open(path) as f:
        return f.read()


def compose_services(compose_path):
    return yaml.safe_load(read(compose_path))["services"]


def replica_names(compose_path):
    """Compose services that run the ropewire image, i.e. the replicas."""
    return sorted(name for name, s in compose_services(compose_path).items()
                  if str(s.get("image", "")).startswith("ropewire"))


def upstream_hosts(kind, text):
    patterns = {
        "envoy": r"socket_address:\s*\{\s*address:\s*([\w.-]+),\s*port_value:\s*50051",
        "haproxy": r"^\s*server\s+\S+\s+([\w.-]+):50051",
        "nginx": r"^\s*server\s+([\w.-]+):50051",
    }
    return re.findall(patterns[kind], text, flags=re.MULTILINE)


def localize(text, hosts):
    """The config with each replica host name replaced by 127.0.0.1, so checkers that resolve
    names (nginx, HAProxy) can run outside the compose network."""
    for host in hosts:
        text = re.sub(rf"\b{re.escape(host)}(?=[,:])", "127.0.0.1", text)
    return text


# --- the checks: each returns a list of problems --------------------------------------------

def check_dockerfiles(paths, config):
    return [p for p in (run([tool("hadolint"), "--config", config, path]) for path in paths) if p]


def check_compose(compose_path):
    problem = run([tool("docker-compose"), "-f", compose_path, "config", "-q"])
    return [problem] if problem else []


def check_upstreams_are_replicas(kind, config_path, compose_path):
    hosts = upstream_hosts(kind, read(config_path))
    replicas = replica_names(compose_path)
    problems = [f"{config_path}: upstream {h!r} is not a replica service of {compose_path} "
                f"(replicas: {', '.join(replicas)})" for h in hosts if h not in replicas]
    if not hosts:
        problems.append(f"{config_path}: no upstream replica found")
    return problems


def check_envoy(config_path):
    problem = run([tool("envoy"), "--mode", "validate", "-c", config_path, "--log-level", "error"])
    return [problem] if problem else []


def check_haproxy(config_path, work_dir):
    rendered = os.path.join(work_dir, os.path.basename(config_path))
    with open(rendered, "w") as f:
        f.write(localize(read(config_path), upstream_hosts("haproxy", read(config_path))))
    # -dW: any warning fails the check.
    problem = run([tool("haproxy"), "-c", "-dW", "-f", rendered])
    return [f"{config_path}: {problem}"] if problem else []


def check_nginx(config_path, work_dir):
    rendered = os.path.join(work_dir, "nginx.conf")
    with open(rendered, "w") as f:
        f.write(localize(read(config_path), upstream_hosts("nginx", read(config_path))))
    problem = run([tool("nginx"), "-t", "-q", "-e", "stderr", "-p", work_dir, "-c", rendered,
                   "-g", f"pid {work_dir}/nginx.pid;"])
    return [f"{config_path}: {problem}"] if problem else []


def check_kubernetes(paths):
    return [p for p in (run([tool("kubernetes-validate"), "--strict", "--quiet", path]) for path in paths) if p]


def k8s_documents(paths):
    docs = []
    for path in paths:
        docs += [d for d in yaml.safe_load_all(read(path)) if d]
    return docs


def check_k8s_envoy(paths, shipped_envoy_path, work_dir):
    """The ConfigMap's Envoy config validates, names the headless Service, and is the shipped
    Envoy config but for its endpoints (and DNS refresh)."""
    docs = k8s_documents(paths)
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "envoy.yaml" in d.get("data", {})]
    if not maps:
        return ["no ConfigMap with envoy.yaml in " + ", ".join(paths)]
    text = maps[0]["data"]["envoy.yaml"]
    path = os.path.join(work_dir, "k8s-envoy.yaml")
    with open(path, "w") as f:
        f.write(text)
    problems = check_envoy(path)
    headless = {d["metadata"]["name"] for d in docs
                if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"}
    for host in upstream_hosts("envoy", text):
        if host not in headless:
            problems.append(f"k8s Envoy upstream {host!r} is not a headless Service ({sorted(headless)})")
    mine, shipped = yaml.safe_load(text), yaml.safe_load(read(shipped_envoy_path))
    for config in (mine, shipped):
        for cluster in config["static_resources"]["clusters"]:
            cluster.pop("load_assignment", None)
            cluster.pop("dns_refresh_rate", None)
    if mine != shipped:
        problems.append(f"the k8s Envoy config differs from {shipped_envoy_path} beyond its endpoints")
    return problems


def flag(args, name):
    return float(args[args.index(name) + 1])


def seconds(value):
    return float(str(value).rstrip("s"))


def check_timings(compose_path, haproxy_path, k8s_paths):
    """Grace periods above the drain, HAProxy's maxconn equal to the replicas' --max-num-seqs,
    the Kubernetes preStop as long as the drain delay."""
    problems = []
    for name in replica_names(compose_path):
        service = compose_services(compose_path)[name]
        command = service["command"]
        drain = flag(command, "--drain-delay-seconds") + flag(command, "--drain-grace-seconds")
        if seconds(service.get("stop_grace_period", "10s")) <= drain:
            problems.append(f"{name}: stop_grace_period must exceed the drain's {drain:g} s")
        maxconn = re.findall(r"maxconn (\d+)", read(haproxy_path).split("backend", 1)[1])
        if [int(m) for m in maxconn] != [int(flag(command, "--max-num-seqs"))]:
            problems.append(f"{haproxy_path}: per-server maxconn {maxconn} != {name}'s --max-num-seqs")
    for d in k8s_documents(k8s_paths):
        if d["kind"] != "Deployment" or d["metadata"]["name"] != "ropewire":
            continue
        pod = d["spec"]["template"]["spec"]
        container = pod["containers"][0]
        args = container["args"]
        delay, grace = flag(args, "--drain-delay-seconds"), flag(args, "--drain-grace-seconds")
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        if pre_stop[0] != "sleep" or float(pre_stop[1]) != delay:
            problems.append(f"k8s preStop {pre_stop} does not sleep --drain-delay-seconds ({delay:g})")
        if pod["terminationGracePeriodSeconds"] <= 2 * delay + grace:
            problems.append("k8s terminationGracePeriodSeconds must exceed preStop + drain delay + grace")
    return problems


def check_metrics_ports(compose_path, haproxy_path, k8s_paths, dockerfiles):
    """Every place that names the HTTP side port (/metrics, /readyz) names the replicas' own
    --metrics-port: HAProxy's check port, the images' EXPOSE, the Kubernetes container port,
    probes and scrape annotation."""
    problems = []
    ports = set()
    for name in replica_names(compose_path):
        command = compose_services(compose_path)[name]["command"]
        if "--metrics-port" not in command:
            problems.append(f"{compose_path}: {name} runs without --metrics-port")
            continue
        ports.add(int(flag(command, "--metrics-port")))
    if len(ports) != 1:
        return problems + [f"{compose_path}: the replicas' --metrics-port differ: {sorted(ports)}"]
    port = ports.pop()
    checked = re.findall(r"^\s*server\s+\S+\s+\S+:50051\s+port\s+(\d+)", read(haproxy_path),
                         flags=re.MULTILINE)
    if not checked or any(int(p) != port for p in checked):
        problems.append(f"{haproxy_path}: servers' check ports {checked} are not --metrics-port {port}")
    for path in dockerfiles:
        text = read(path)
        exposed = re.findall(r"^EXPOSE\s+(.*)$", text, flags=re.MULTILINE)
        if not exposed or str(port) not in exposed[-1].split() or f'"--metrics-port", "{port}"' not in text:
            problems.append(f"{path}: must run with --metrics-port {port} and EXPOSE it")
    for d in k8s_documents(k8s_paths):
        if d["kind"] != "Deployment" or d["metadata"]["name"] != "ropewire":
            continue
        template = d["spec"]["template"]
        container = template["spec"]["containers"][0]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        if int(flag(container["args"], "--metrics-port")) != port or named.get("metrics") != port:
            problems.append(f"k8s: --metrics-port and the `metrics` containerPort must both be {port}")
        for probe in ("startupProbe", "readinessProbe"):
            get = container[probe].get("httpGet", {})
            if get.get("path") != "/readyz" or get.get("port") not in ("metrics", port):
                problems.append(f"k8s: {probe} must GET /readyz on the metrics port")
        if template["metadata"].get("annotations", {}).get("prometheus.io/port") != str(port):
            problems.append(f"k8s: the prometheus.io/port annotation must be {port}")
    return problems


def check_all(paths, work_dir):
    p = paths
    problems = check_dockerfiles(p["dockerfiles"], p["hadolint_config"])
    problems += check_compose(p["compose"])
    problems += check_envoy(p["envoy"])
    problems += check_haproxy(p["haproxy"], work_dir) + check_haproxy(p["haproxy_l4"], work_dir)
    problems += check_nginx(p["nginx"], work_dir)
    for kind, key in (("envoy", "envoy"), ("haproxy", "haproxy"), ("haproxy", "haproxy_l4"), ("nginx", "nginx")):
        problems += check_upstreams_are_replicas(kind, p[key], p["compose"])
    problems += check_kubernetes(p["k8s"])
    problems += check_k8s_envoy(p["k8s"], p["envoy"], work_dir)
    problems += check_timings(p["compose"], p["haproxy"], p["k8s"])
    problems += check_metrics_ports(p["compose"], p["haproxy"], p["k8s"], p["dockerfiles"])
    return problems


def shipped_paths():
    return {
        "dockerfiles": sorted(os.path.join(ROOT, f) for f in os.listdir(ROOT) if f.startswith("Dockerfile")),
        "hadolint_config": os.path.join(ROOT, ".hadolint.yaml"),
        "compose": os.path.join(DEPLOY, "compose", "docker-compose.yml"),
        "envoy": os.path.join(DEPLOY, "envoy", "envoy.yaml"),
        "haproxy": os.path.join(DEPLOY, "haproxy", "haproxy.cfg"),
        "haproxy_l4": os.path.join(DEPLOY, "haproxy", "haproxy-l4.cfg"),
        "nginx": os.path.join(DEPLOY, "nginx", "nginx.conf"),
        "k8s": sorted(os.path.join(DEPLOY, "k8s", f) for f in os.listdir(os.path.join(DEPLOY, "k8s"))
                      if f.endswith(".yaml")),
    }


# --- self-test: a broken copy of each file must be caught ------------------------------------

def copy_tree(work_dir):
    """deploy/, the Dockerfiles and .hadolint.yaml copied into work_dir, same layout."""
    shutil.copytree(DEPLOY, os.path.join(work_dir, "deploy"))
    for name in os.listdir(ROOT):
        if name.startswith("Dockerfile") or name == ".hadolint.yaml":
            shutil.copy(os.path.join(ROOT, name), work_dir)
    paths = shipped_paths()
    return {key: ([os.path.join(work_dir, os.path.relpath(v, ROOT)) for v in value] if isinstance(value, list)
                  else os.path.join(work_dir, os.path.relpath(value, ROOT))) for key, value in paths.items()}


def edit(path, old, new):
    text = read(path)
    if old not in text:
        raise SystemExit(f"self-test: {old!r} is not in {path}; update the self-test")
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


# (what is broken, file key, old text, new text, the check that must catch it)
MISTAKES = [
    ("an Envoy enum typo", "envoy", "lb_policy: LEAST_REQUEST", "lb_policy: LEAST_REQEST",
     lambda p, w: check_envoy(p["envoy"])),
    ("an Envoy upstream that is no replica", "envoy", "address: ropewire-3,", "address: ropewire-4,",
     lambda p, w: check_upstreams_are_replicas("envoy", p["envoy"], p["compose"])),
    ("an HAProxy keyword typo", "haproxy", "balance leastconn", "balance leastcon",
     lambda p, w: check_haproxy(p["haproxy"], w)),
    ("an HAProxy server that is no replica", "haproxy", "server ropewire-2 ropewire-2:50051",
     "server ropewire-2 ropewire-9:50051",
     lambda p, w: check_upstreams_are_replicas("haproxy", p["haproxy"], p["compose"])),
    ("an nginx value typo", "nginx", "grpc_read_timeout 300s;", "grpc_read_timeout 300x;",
     lambda p, w: check_nginx(p["nginx"], w)),
    ("a compose file that does not parse", "compose", "services:\n", "services: [\n",
     lambda p, w: check_compose(p["compose"])),
    ("a stop_grace_period shorter than the drain", "compose", "stop_grace_period: 35s", "stop_grace_period: 20s",
     lambda p, w: check_timings(p["compose"], p["haproxy"], p["k8s"])),
    ("a Kubernetes field typo", "k8s_ropewire", "failureThreshold: 150", "failureThresold: 150",
     lambda p, w: check_kubernetes(p["k8s"])),
    ("a preStop that does not match the drain delay", "k8s_ropewire", 'command: ["sleep", "5"]',
     'command: ["sleep", "2"]', lambda p, w: check_timings(p["compose"], p["haproxy"], p["k8s"])),
    ("a Kubernetes Envoy config that drifted", "k8s_envoy", "interval: 1s", "interval: 2s",
     lambda p, w: check_k8s_envoy(p["k8s"], p["envoy"], w)),
    ("an HAProxy check port that is not the replicas' metrics port", "haproxy",
     "ropewire-2:50051 port 9090", "ropewire-2:50051 port 9091",
     lambda p, w: check_metrics_ports(p["compose"], p["haproxy"], p["k8s"], p["dockerfiles"])),
    ("a scrape annotation on the wrong port", "k8s_ropewire", 'prometheus.io/port: "9090"',
     'prometheus.io/port: "9091"',
     lambda p, w: check_metrics_ports(p["compose"], p["haproxy"], p["k8s"], p["dockerfiles"])),
    ("a readiness probe back on gRPC", "k8s_ropewire",
     "readinessProbe:\n          httpGet: { path: /readyz, port: metrics }",
     "readinessProbe:\n          grpc: { port: 50051 }",
     lambda p, w: check_metrics_ports(p["compose"], p["haproxy"], p["k8s"], p["dockerfiles"])),
    ("a Dockerfile lint finding", "dockerfile", "WORKDIR /src", "WORKDIR /src\nRUN cd /tmp && ls",
     lambda p, w: check_dockerfiles(p["dockerfiles"], p["hadolint_config"])),
]


def self_test():
    failures = []
    for what, key, old, new, check in MISTAKES:
        with tempfile.TemporaryDirectory(prefix="ropewire-deploy-check-") as work_dir:
            paths = copy_tree(work_dir)
            target = {"k8s_ropewire": lambda: [p for p in paths["k8s"] if p.endswith("ropewire.yaml")][0],
                      "k8s_envoy": lambda: [p for p in paths["k8s"] if p.endswith("envoy.yaml")][0],
                      "dockerfile": lambda: [p for p in paths["dockerfiles"] if p.endswith("Dockerfile")][0],
                      }.get(key, lambda: paths[key])()
            before = check(paths, work_dir)
            edit(target, old, new)
            after = check(paths, work_dir)
        if before:
            failures.append(f"{what}: the unbroken copy already fails: {before}")
        elif not after:
            failures.append(f"{what}: not caught")
        else:
            print(f"caught {what}: {after[0].splitlines()[0][:160]}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--self-test", action="store_true", help="check that broken copies are caught")
    args = parser.parse_args()
    if args.self_test:
        problems = self_test()
    else:
        with tempfile.TemporaryDirectory(prefix="ropewire-deploy-check-") as work_dir:
            problems = check_all(shipped_paths(), work_dir)
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    if args.self_test:
        print(f"self-test: {len(MISTAKES) - len(problems)} of {len(MISTAKES)} broken copies caught")
    else:
        print(f"deploy check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
