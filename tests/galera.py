"""A 3-node MariaDB Galera cluster on 127.0.0.1, for the cluster tests and CI.

    python3 -m tests.galera start          # start (or check) all three nodes
    python3 -m tests.galera status         # each node's cluster size and state
    python3 -m tests.galera kill 2         # SIGKILL one node
    python3 -m tests.galera restart 2      # start it again: it rejoins (IST or SST)
    python3 -m tests.galera stop           # stop every node, remove the data

Node ``n`` (1 to 3) serves SQL on port ``3310 + n`` and talks to the others
on ``4560 + 10 n`` (group communication), ``4561 + 10 n`` (incremental state
transfer) and ``4562 + 10 n`` (full state transfer, rsync); the normal
MariaDB on 3306 is left alone. The data lives in ``KEYVAL_GALERA_DIR``
(default ``keyval-galera`` in the temporary folder), owned by the ``mysql``
user: the server drops to that user, and rsync's state transfer runs as it.
``start`` installs what is missing from Debian's archive (``galera-4``,
``rsync``) and returns once every node reports ``wsrep_cluster_size=3`` and
``wsrep_ready=ON``. ``stop`` leaves nothing running.

Only the standard library is used, and the ``mariadb`` client for queries,
so this runs before any virtual environment exists. The settings of the
test suite for the cluster are ``KEYVAL_TEST_DB=galera`` (see
``tests/settings.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NODES = (1, 2, 3)
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
CLUSTER_NAME = "keyval_test"
#: Seconds a node may take to join (a full state transfer included).
JOIN_TIMEOUT = 120.0
#: Seconds a node may take to shut down cleanly before it is killed.
STOP_TIMEOUT = 60.0


def base_directory() -> Path:
    """Return the folder that holds every node's data, socket, logs and settings."""
    default = Path(tempfile.gettempdir()) / "keyval-galera"
    return Path(os.environ.get("KEYVAL_GALERA_DIR", default))


def sql_port(node: int) -> int:
    """Return the port on which ``node`` takes SQL connections."""
    return 3310 + node


def gcomm_port(node: int) -> int:
    """Return ``node``'s group communication port; the next two are IST and SST."""
    return 4560 + 10 * node


def node_directory(node: int) -> Path:
    """Return the folder of ``node``: ``data/``, the socket, the pid file, the logs."""
    return base_directory() / f"node{node}"


def socket_path(node: int) -> Path:
    """Return the Unix socket of ``node`` (root connects through it without a password)."""
    return node_directory(node) / "mysqld.sock"


def pid_path(node: int) -> Path:
    """Return the pid file the server of ``node`` writes."""
    return node_directory(node) / "mysqld.pid"


def error_log(node: int) -> Path:
    """Return the error log of ``node``: where to look when it does not start."""
    return node_directory(node) / "error.log"


def settings_file(node: int) -> Path:
    """Return the option file ``node`` is started with."""
    return node_directory(node) / "my.cnf"


def node_settings(node: int) -> str:
    """Return the option file of ``node``.

    ``binlog_format=ROW`` and InnoDB are what Galera replicates;
    ``innodb_autoinc_lock_mode=2`` is what it requires of ``AUTO_INCREMENT``
    inserts made on several nodes at once. The buffer pool and caches are
    small: the machine is shared.
    """
    directory = node_directory(node)
    port = gcomm_port(node)
    members = ",".join(f"127.0.0.1:{gcomm_port(other)}" for other in NODES)
    provider_options = ";".join(
        [
            f"gmcast.listen_addr=tcp://127.0.0.1:{port}",
            f"ist.recv_addr=127.0.0.1:{port + 1}",
            "gcache.size=64M",
            # A killed node is declared gone after a few seconds, not 15 s.
            "evs.suspect_timeout=PT3S",
            "evs.inactive_timeout=PT6S",
            "evs.install_timeout=PT6S",
        ]
    )
    return f"""\
[mysqld]
user = mysql
datadir = {directory / "data"}
socket = {socket_path(node)}
pid-file = {pid_path(node)}
log-error = {error_log(node)}
port = {sql_port(node)}
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
performance_schema = OFF
default_storage_engine = InnoDB
binlog_format = ROW
innodb_autoinc_lock_mode = 2
innodb_buffer_pool_size = 64M
innodb_log_file_size = 48M
innodb_flush_log_at_trx_commit = 2
max_connections = 200
wsrep_on = ON
wsrep_provider = {PROVIDER}
wsrep_cluster_name = {CLUSTER_NAME}
wsrep_cluster_address = gcomm://{members}
wsrep_node_name = node{node}
wsrep_node_address = 127.0.0.1:{port}
wsrep_provider_options = "{provider_options}"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:{port + 2}
wsrep_slave_threads = 2
"""


# -- installing --------------------------------------------------------------------


def missing_packages() -> list[str]:
    """Return the Debian packages the cluster needs that are not installed."""
    missing = []
    if not shutil.which("mariadbd", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        missing.append("mariadb-server")
    if not Path(PROVIDER).exists():
        missing.append("galera-4")
    if not shutil.which("rsync"):
        missing.append("rsync")
    if not (shutil.which("ss") or shutil.which("lsof")):
        missing.append("iproute2")  # rsync's state transfer script looks for its port with ss
    return missing


def install_packages() -> None:
    """Install the missing packages from Debian's archive (``apt-get update`` first)."""
    missing = missing_packages()
    if not missing:
        return
    print(f"galera: installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


# -- running the nodes -------------------------------------------------------------


def query(node: int, sql: str, timeout: float = 10.0) -> list[list[str]] | None:
    """Run ``sql`` on ``node`` as root through its socket; return its rows, ``None`` if down."""
    if not socket_path(node).exists():
        return None
    try:
        result = subprocess.run(
            ["mariadb", f"--socket={socket_path(node)}", "-uroot", "-N", "-B", "-e", sql],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    return [line.split("\t") for line in result.stdout.splitlines()]


def wsrep_status(node: int) -> dict[str, str]:
    """Return ``node``'s ``wsrep_%`` status variables (empty when it does not answer)."""
    rows = query(node, "SHOW GLOBAL STATUS LIKE 'wsrep_%'")
    return {} if rows is None else {row[0]: row[1] for row in rows}


def is_synced(node: int, size: int = len(NODES)) -> bool:
    """Return whether ``node`` is ready, synced, in a primary component of ``size`` nodes."""
    status = wsrep_status(node)
    return (
        status.get("wsrep_ready") == "ON"
        and status.get("wsrep_cluster_size") == str(size)
        and status.get("wsrep_local_state_comment") == "Synced"
        and status.get("wsrep_cluster_status") == "Primary"
    )


def is_synced_member(node: int) -> bool:
    """Return whether ``node`` has joined and caught up (whatever the cluster's size)."""
    return wsrep_status(node).get("wsrep_local_state_comment") == "Synced"


def server_pid(node: int) -> int | None:
    """Return the pid of ``node``'s server if it is running, else ``None``."""
    try:
        pid = int(pid_path(node).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        # The state is the field after the command's name, in parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else pid  # a zombie has exited


def prepare(node: int) -> None:
    """Create ``node``'s folder and option file, owned by ``mysql``; initialize node 1's data."""
    directory = node_directory(node)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    settings_file(node).write_text(node_settings(node))
    subprocess.run(["chown", "-R", "mysql:mysql", str(base_directory())], check=True)
    if node == 1 and not (directory / "data" / "mysql").exists():
        # The other nodes get everything from node 1 by state transfer.
        # Its output (advice on securing a production server) is shown only on failure.
        result = subprocess.run(
            [
                "mariadb-install-db",
                f"--defaults-file={settings_file(node)}",
                "--user=mysql",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"galera: mariadb-install-db failed:\n{result.stdout}{result.stderr}")


def launch(node: int, new_cluster: bool = False) -> None:
    """Start ``node``'s server in the background (``new_cluster``: as a cluster's first node)."""
    command = ["mariadbd", f"--defaults-file={settings_file(node)}"]
    if new_cluster:
        command.append("--wsrep-new-cluster")
    with open(node_directory(node) / "stdout.log", "ab") as output:
        # setsid --fork: the server is nobody's child here (init reaps it once
        # it exits), and in a session of its own, so that it outlives the
        # command or test that started it.
        subprocess.run(
            ["setsid", "--fork", *command],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for(
    condition_name: str, check: Callable[[int], bool], timeout: float, nodes: tuple[int, ...]
) -> None:
    """Poll ``check(node)`` for each of ``nodes`` until all are true, or raise ``SystemExit``."""
    deadline = time.monotonic() + timeout
    pending = list(nodes)
    while pending:
        pending = [node for node in pending if not check(node)]
        if not pending:
            return
        for node in pending:
            if server_pid(node) is None and pid_path(node).exists():
                fail(node, f"node {node} exited while waiting until {condition_name}")
        if time.monotonic() > deadline:
            fail(pending[0], f"nodes {pending} not {condition_name} within {timeout:.0f} s")
        time.sleep(0.5)


def fail(node: int, message: str) -> None:
    """Print ``message`` and the end of ``node``'s error log, then exit with status 1."""
    log = ""
    if error_log(node).exists():
        log = "\n".join(error_log(node).read_text(errors="replace").splitlines()[-40:])
    raise SystemExit(f"galera: {message}\n--- end of {error_log(node)} ---\n{log}")


def bootstrap_node() -> int:
    """Return the node to start a stopped cluster from: one marked safe to bootstrap.

    A fresh cluster starts from node 1. After every node stopped, Galera marks
    the last one to leave ``safe_to_bootstrap: 1`` in its ``grastate.dat``;
    after a crash of all, none is marked, and node 1 is forced to be.
    """
    for node in NODES:
        state = node_directory(node) / "data" / "grastate.dat"
        if state.exists() and "safe_to_bootstrap: 1" in state.read_text():
            return node
    state = node_directory(1) / "data" / "grastate.dat"
    if state.exists():
        state.write_text(state.read_text().replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1"))
    return 1


def start() -> None:
    """Start the nodes that are not running; return once all three are synced."""
    if all(is_synced(node) for node in NODES):
        print("galera: the cluster is running")
        return
    install_packages()
    started = time.monotonic()
    running = [node for node in NODES if server_pid(node) is not None]
    for node in NODES:
        prepare(node)
    if not running:
        first = bootstrap_node()
        launch(first, new_cluster=True)
        wait_for("ready", lambda node: wsrep_status(node).get("wsrep_ready") == "ON", 60, (first,))
        # Root from 127.0.0.1 without a password, as on the test machine's
        # MariaDB; replicated to the others (and sent with the state transfer).
        query(
            first,
            "CREATE USER IF NOT EXISTS root@'127.0.0.1'; "
            "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
        )
        running = [first]
    for node in NODES:
        if node not in running:
            launch(node)
            # One joiner at a time: two state transfers from one donor at once
            # make the second wait for the first anyway.
            wait_for("synced", is_synced_member, JOIN_TIMEOUT, (node,))
    wait_for("in a cluster of 3", is_synced, JOIN_TIMEOUT, NODES)
    ports = ", ".join(str(sql_port(node)) for node in NODES)
    print(f"galera: 3 nodes synced in {time.monotonic() - started:.1f} s (SQL on ports {ports})")


def stop_node(node: int) -> None:
    """Shut ``node`` down cleanly (SIGTERM), or kill it after ``STOP_TIMEOUT`` seconds."""
    pid = server_pid(node)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while server_pid(node) is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def stop(keep_data: bool = False) -> None:
    """Stop every node, node 1 last (so that it is the one safe to start the cluster from).

    Then remove the data, unless ``keep_data``.
    """
    for node in reversed(NODES):
        stop_node(node)
    leftovers = [node for node in NODES if server_pid(node) is not None]
    if leftovers:
        raise SystemExit(f"galera: nodes {leftovers} are still running")
    if not keep_data and base_directory().exists():
        shutil.rmtree(base_directory())
    print("galera: stopped" + ("" if keep_data else f", {base_directory()} removed"))


def kill(node: int) -> None:
    """Kill ``node``'s server with SIGKILL (a crash: no clean leave from the cluster)."""
    pid = server_pid(node)
    if pid is None:
        raise SystemExit(f"galera: node {node} is not running")
    os.kill(pid, signal.SIGKILL)
    while server_pid(node) is not None:
        time.sleep(0.05)
    print(f"galera: node {node} (pid {pid}) killed")


def restart(node: int) -> None:
    """Start ``node`` again (after ``kill`` or a stop) and wait until the cluster has 3 nodes."""
    if server_pid(node) is not None:
        stop_node(node)
    # A killed server leaves its pid file; the new one writes its own.
    pid_path(node).unlink(missing_ok=True)
    launch(node)
    wait_for("in a cluster of 3", is_synced, JOIN_TIMEOUT, NODES)
    print(f"galera: node {node} rejoined")


def status() -> int:
    """Print each node's state; return 0 when all three are synced, else 1."""
    synced = True
    for node in NODES:
        state = wsrep_status(node)
        if not state:
            print(f"node {node} (port {sql_port(node)}): down")
            synced = False
            continue
        print(
            f"node {node} (port {sql_port(node)}): {state.get('wsrep_local_state_comment')}, "
            f"cluster size {state.get('wsrep_cluster_size')}, "
            f"ready {state.get('wsrep_ready')}, {state.get('wsrep_cluster_status')}"
        )
        synced = synced and is_synced(node)
    return 0 if synced else 1


def main(argv: list[str]) -> int:
    """Run the command line: ``start``, ``stop``, ``status``, ``kill N``, ``restart N``."""
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.galera", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the nodes that are not running")
    stop_parser = commands.add_parser("stop", help="stop every node and remove the data")
    stop_parser.add_argument("--keep-data", action="store_true", help="leave the data folder")
    commands.add_parser("status", help="print each node's state; exit 1 unless all are synced")
    for name in ("kill", "restart"):
        command = commands.add_parser(name, help=f"{name} one node")
        command.add_argument("node", type=int, choices=NODES)
    options = parser.parse_args(argv)
    if options.command == "start":
        start()
    elif options.command == "stop":
        stop(options.keep_data)
    elif options.command == "status":
        return status()
    elif options.command == "kill":
        kill(options.node)
    else:
        restart(options.node)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
