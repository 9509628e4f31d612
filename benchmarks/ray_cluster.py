"""Connecting to Ray: an existing cluster (``--ray-address``), or a loopback-only instance this process starts.

Ray's head node probes cloud metadata addresses and posts usage reports when it starts, even with usage
statistics disabled. Every Ray process this project starts (:func:`ray_session` without an address, and
:class:`LoopbackCluster` for tests and local measurements) therefore gets :data:`LOOPBACK_ENV`: HTTP(S)
proxies pointing at a closed loopback port, the usage-report URL on loopback, and nodes bound to 127.0.0.2
(Ray replaces 127.0.0.1 by the machine's own address) and 127.0.0.3. Processes started that way cannot reach
the Hugging Face Hub either: give them a local model folder and data (the offline defaults).
"""
from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from benchmarks.runinfo import PROJECT_ROOT

HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
_CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, requests fail at once
LOOPBACK_ENV: dict[str, str] = {
    "http_proxy": _CLOSED_PORT,
    "https_proxy": _CLOSED_PORT,
    "HTTP_PROXY": _CLOSED_PORT,
    "HTTPS_PROXY": _CLOSED_PORT,
    "no_proxy": f"localhost,127.0.0.1,{HEAD_IP},{WORKER_IP}",
    "NO_PROXY": f"localhost,127.0.0.1,{HEAD_IP},{WORKER_IP}",
    "RAY_USAGE_STATS_REPORT_URL": f"{_CLOSED_PORT}/",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def auth_env(token: str | None = None) -> dict[str, str]:
    """Token authentication with ``token`` (default: a fresh random one), for a cluster and its clients.

    Set explicitly, so that Ray neither writes a token file into the home folder nor enables authentication
    on its own because such a file exists (Ray 2.60 does both when ``RAY_AUTH_MODE`` is unset).
    """
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32)}


# Driver settings that trial workers need too (workers of an existing cluster do not inherit the driver's).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_DATASETS_CACHE",
                 "GLUE_DIR")
# Ray Tune warns on every experiment snapshot that a per-epoch checkpoint forces; those are intended here.
DRIVER_ENV = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


def require_ray() -> None:
    """Fail with the install command when Ray is missing."""
    try:
        importlib.import_module("ray.tune")
    except ImportError as error:
        raise RuntimeError('the Ray backend needs Ray Tune: python3 -m pip install -e ".[ray]"') from error


def loopback_host(address: str | None) -> str | None:
    """The host of ``HOST:PORT`` when it is a loopback address (the driver must then bind to it), else None."""
    if not address or address == "auto":
        return None
    host = address.split("://")[-1].rsplit(":", 1)[0]
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return "127.0.0.1" if host == "localhost" else None


def worker_runtime_env(environ: Mapping[str, str] = os.environ) -> dict:
    """Runtime environment of every Ray worker: this project importable, offline settings forwarded."""
    pythonpath = os.pathsep.join([str(PROJECT_ROOT), *[p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env_vars = {"PYTHONPATH": pythonpath, **{name: environ[name] for name in FORWARDED_ENV if name in environ}}
    return {"env_vars": env_vars}


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables inside a ``with`` block (child processes inherit them), then restore them."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reload_ray_auth_settings() -> None:
    """Make Ray read ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` again (it caches them when first imported).

    Needed when this process changed them after importing Ray (tests, :mod:`benchmarks.perf.backend_timing`);
    Ray has no public call for it, so this uses the two its own token set-up uses.
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[None]:
    """Connect to the Ray cluster at ``address``, or start a loopback-only local instance; disconnect after.

    ``num_cpus``/``num_gpus`` size a local instance (default: the machine's); a cluster keeps its own sizes.
    """
    require_ray()
    import ray

    if ray.is_initialized():
        raise RuntimeError("Ray is already initialised in this process; run one Ray experiment per process")
    runtime_env = worker_runtime_env()
    # A local instance's processes inherit the loopback-only settings and this session's own token; a
    # cluster's authentication comes from the environment (RAY_AUTH_MODE, RAY_AUTH_TOKEN).
    session_env = DRIVER_ENV if address else {**DRIVER_ENV, **LOOPBACK_ENV, **auth_env()}
    with environment(**session_env):
        reload_ray_auth_settings()
        if address:
            ray.init(address=address, _node_ip_address=loopback_host(address), runtime_env=runtime_env,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, _node_ip_address=HEAD_IP,
                     runtime_env=runtime_env, log_to_driver=False, configure_logging=False)
        try:
            yield
        finally:
            ray.shutdown()


def ray_executable() -> str:
    """The ``ray`` command of this Python environment."""
    candidate = Path(sys.executable).with_name("ray")
    found = str(candidate) if candidate.is_file() else shutil.which("ray")
    if not found:
        raise RuntimeError('the `ray` command was not found; install Ray Tune: python3 -m pip install -e ".[ray]"')
    return found


@dataclass
class LoopbackCluster:
    """A Ray cluster of one head and ``workers`` worker nodes on loopback addresses, for tests and measurements.

    Each node is a foreground ``ray start --block`` process; :meth:`stop` ends them, and with them the node's
    Ray processes, without touching other Ray clusters on the machine.
    """

    port: int = 6390
    cpus_per_node: int = 1
    workers: int = 1
    temp_dir: Path | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{self.port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What a client (driver) needs in its environment: the loopback-only settings and the cluster's token."""
        return {**LOOPBACK_ENV, **auth_env(self.token)}

    def node_command(self, head: bool, ip: str) -> list[str]:
        command = [ray_executable(), "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={self.cpus_per_node}",
                   "--num-gpus=0", "--disable-usage-stats"]
        if head:
            command += ["--head", f"--port={self.port}", "--include-dashboard=false"]
            if self.temp_dir is not None:
                command.append(f"--temp-dir={Path(self.temp_dir).resolve()}")  # Ray needs an absolute path
        else:
            command.append(f"--address={self.address}")
        return command

    def start(self, timeout_s: float = 120.0) -> "LoopbackCluster":
        """Start the head, then the workers; return once every node is alive in the cluster."""
        require_ray()
        env = {**os.environ, **self.client_env}
        logs = (self.temp_dir or Path("/tmp")) / "loopback-cluster-logs"
        logs.mkdir(parents=True, exist_ok=True)
        ips = [HEAD_IP] + [f"127.0.0.{3 + index}" for index in range(self.workers)]
        for index, ip in enumerate(ips):
            log = open(logs / f"node-{ip}.log", "ab")
            self.processes.append(subprocess.Popen(self.node_command(index == 0, ip), env=env, stdout=log,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
            self._wait_for_nodes(index + 1, timeout_s)
        return self

    def _wait_for_nodes(self, expected: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        env = {**os.environ, **self.client_env}
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Ray node exited with code {process.returncode} while starting "
                                       f"(command: {' '.join(process.args)})")
            try:
                check = subprocess.run(
                    [sys.executable, "-c", _COUNT_NODES, self.address, loopback_host(self.address) or ""],
                    env=env, capture_output=True, text=True, timeout=min(30.0, timeout_s),
                )
            except subprocess.TimeoutExpired:  # the head is not up yet (or died: checked above next round)
                continue
            if check.returncode == 0 and check.stdout.strip().isdigit() and int(check.stdout.strip()) >= expected:
                return
            time.sleep(1.0)
        raise TimeoutError(f"the loopback Ray cluster did not reach {expected} node(s) in {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the worker nodes, then the head (SIGTERM to each ``ray start --block``, SIGKILL if stuck)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> "LoopbackCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_COUNT_NODES = """
import sys, ray
ray.init(address=sys.argv[1], _node_ip_address=sys.argv[2] or None, log_to_driver=False, configure_logging=False)
print(sum(1 for node in ray.nodes() if node["Alive"]))
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.ray_cluster``: run a loopback cluster in the foreground until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description="start a loopback-only Ray cluster (head 127.0.0.2, workers 127.0.0.3..)")
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--workers", type=int, default=1, help="worker nodes beside the head")
    parser.add_argument("--cpus-per-node", type=int, default=1)
    args = parser.parse_args(argv)
    cluster = LoopbackCluster(port=args.port, cpus_per_node=args.cpus_per_node, workers=args.workers).start()
    print(f"loopback Ray cluster at {cluster.address} ({1 + args.workers} nodes); Ctrl-C stops it. Clients need:\n"
          + "\n".join(f"export {name}={value}" for name, value in cluster.client_env.items()), flush=True)
    try:
        while all(process.poll() is None for process in cluster.processes):
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
