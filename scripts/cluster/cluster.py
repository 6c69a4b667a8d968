"""A local Petrel cluster as real processes, for fault tests and benchmarks.

    from cluster import Cluster
    with Cluster(nodes=3) as c:            # free ports, a temporary data directory
        c.start()                           # every node, waits for the client ports
        leader = c.leader("t", 0)           # node id, from confluent-kafka metadata
        c.node(leader).kill9(); c.node(leader).start()
        c.node(2).sigstop(); c.node(2).sigcont()
        c.node(3).stop(); c.node(3).wipe(); c.node(3).start()

Each node's command line comes from `scripts/interop/broker.sh cluster-argv` (the one place that
knows broker argv); its output goes to <work>/node-<i>.log (appended across restarts, with a
marker line per start).  Nodes run in sessions of their own, so a Ctrl-C of the harness does not
reach them; `Cluster.close()` (also on exit of the `with` block) stops every node: SIGCONT,
SIGTERM, SIGKILL after a grace period.

`metadata_from(port)` asks one node directly (a raw Metadata v7 request: leaders, leader epochs,
ISR, the controller it knows) -- librdkafka would pick any broker, this is how per-node views
are compared.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BROKER_SH = os.path.join(REPO, "scripts", "interop", "broker.sh")


class ClusterError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def petrel_bin() -> str:
    """PETREL_BIN, or build petrel (debug, PETREL_SCRATCH_PATH) through broker.sh and export it."""
    if os.environ.get("PETREL_BIN"):
        return os.environ["PETREL_BIN"]
    out = subprocess.run(["bash", BROKER_SH, "petrel-bin"], stdout=subprocess.PIPE, text=True, timeout=3600)
    if out.returncode != 0:
        raise ClusterError("building petrel failed (scripts/interop/broker.sh petrel-bin)")
    os.environ["PETREL_BIN"] = out.stdout.strip().splitlines()[-1]
    return os.environ["PETREL_BIN"]


def port_free(port: int) -> bool:
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_base_ports(nodes: int, tries: int = 200) -> tuple[int, int]:
    """(client base, controller base): 2 * nodes free ports, away from 9092-9094 and 19092-19094."""
    for _ in range(tries):
        base = random.randrange(20000, 40000 - 2 * nodes)
        ports = range(base, base + 2 * nodes)
        if all(port_free(p) for p in ports):
            return base, base + nodes
    raise ClusterError("no free port range found")


def accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout).close()
        return True
    except OSError:
        return False


class Node:
    def __init__(self, cluster: "Cluster", node_id: int):
        self.cluster = cluster
        self.id = node_id
        self.client_port = cluster.base_port + node_id - 1
        self.controller_port = cluster.controller_base_port + node_id - 1
        self.data_dir = os.path.join(cluster.data_dir, f"node-{node_id}")
        self.log_path = os.path.join(cluster.work, f"node-{node_id}.log")
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.stopped_by_signal = False  # SIGSTOP in effect
        self.expected_down = True       # not running because the harness stopped or killed it
        self.deaths: list[str] = []     # exits the harness did not cause

    def __repr__(self) -> str:
        return f"node {self.id} (pid {self.pid}, 127.0.0.1:{self.client_port})"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        out = subprocess.run(
            ["bash", BROKER_SH, "cluster-argv", str(self.id), str(self.cluster.nodes), self.cluster.data_dir,
             str(self.cluster.base_port), str(self.cluster.controller_base_port), *self.cluster.overrides],
            capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise ClusterError(f"broker.sh cluster-argv failed: {out.stderr.strip()}")
        return out.stdout.splitlines()

    def start(self, wait: bool = True, timeout: float = 60) -> None:
        if self.alive:
            raise ClusterError(f"{self} is already running")
        self.starts += 1
        argv = self.argv()
        with open(self.log_path, "ab") as f:
            f.write(f"===== start #{self.starts} at {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            f.flush()
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={**os.environ, **self.cluster.env})
        self.stopped_by_signal = False
        self.expected_down = False
        log(f"started {self}")
        if wait:
            self.wait_port(timeout)

    def wait_port(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                self.expected_down = True
                tail = self.tail(6).rstrip().replace("\n", "\n    | ")
                raise ClusterError(f"{self} exited with status {self.proc.returncode if self.proc else None} "
                                   f"before listening on {self.client_port}; its log ends:\n    | {tail}")
            if accepts(self.client_port):
                return
            time.sleep(0.05)
        raise ClusterError(f"{self} not listening on 127.0.0.1:{self.client_port} after {timeout:.0f}s")

    def signal(self, signo: int) -> None:
        if not self.alive:
            raise ClusterError(f"{self} is not running")
        os.kill(self.proc.pid, signo)

    def check_death(self) -> str | None:
        """A description of this node's exit if the harness did not cause it (reported once)."""
        if self.proc is None or self.expected_down or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
        self.expected_down = True
        msg = f"node {self.id} (pid {self.proc.pid}) {how} without being told to (see its log)"
        self.deaths.append(msg)
        return msg

    def kill9(self) -> None:
        self.check_death()
        self.expected_down = True
        self.signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stopped_by_signal = False
        log(f"kill -9 {self}")

    def sigstop(self) -> None:
        self.signal(signal.SIGSTOP)
        self.stopped_by_signal = True
        log(f"SIGSTOP {self}")

    def sigcont(self) -> None:
        self.signal(signal.SIGCONT)
        self.stopped_by_signal = False
        log(f"SIGCONT {self}")

    def stop(self, grace: float = 15) -> bool:
        """SIGTERM (after SIGCONT if stopped), SIGKILL after `grace` s.  True if it ended on SIGTERM."""
        self.check_death()
        self.expected_down = True
        if not self.alive:
            return True
        if self.stopped_by_signal:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.stopped_by_signal = False
        self.proc.terminate()
        try:
            self.proc.wait(grace)
            log(f"stopped {self} (status {self.proc.returncode})")
            return True
        except subprocess.TimeoutExpired:
            log(f"{self} still running {grace:.0f}s after SIGTERM: SIGKILL")
            self.proc.kill()
            self.proc.wait(10)
            return False

    def restart(self, wait: bool = True) -> None:
        self.stop()
        self.start(wait=wait)

    def wipe(self) -> None:
        if self.alive:
            raise ClusterError(f"wipe: {self} is running")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        log(f"wiped {self.data_dir}")

    def tail(self, lines: int = 80) -> str:
        if lines <= 0:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return str(e)


class Cluster:
    """N petrel nodes (broker+controller each) on 127.0.0.1, free ports unless given."""

    def __init__(self, nodes: int = 3, base_port: int | None = None, controller_base_port: int | None = None,
                 overrides: list[str] | None = None, work: str | None = None, keep: bool = False,
                 env: dict[str, str] | None = None):
        self.nodes = nodes
        if base_port is None:
            base_port, auto_cbase = free_base_ports(nodes)
            controller_base_port = controller_base_port or auto_cbase
        self.base_port = base_port
        self.controller_base_port = controller_base_port or base_port + 10000
        self.overrides = list(overrides or [])
        self.env = dict(env or {})
        self.own_work = work is None
        self.work = work or tempfile.mkdtemp(prefix="petrel-cluster.")
        self.data_dir = os.path.join(self.work, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.keep = keep
        self.members = {i: Node(self, i) for i in range(1, nodes + 1)}
        self._admins: dict = {}
        petrel_bin()

    # -- processes --------------------------------------------------------------------------
    def node(self, node_id: int) -> Node:
        return self.members[node_id]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.members.values())

    def live_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.members.values()
                        if n.alive and not n.stopped_by_signal) or self.bootstrap

    def start(self, timeout: float = 60) -> None:
        for n in self.members.values():
            if not n.alive:
                n.start(wait=False)
        deadline = time.monotonic() + timeout
        for n in self.members.values():
            n.wait_port(max(1.0, deadline - time.monotonic()))
        log(f"cluster up: {self.bootstrap} (work dir {self.work})")

    def close(self) -> None:
        self._admins.clear()
        for n in self.members.values():
            n.stop()
        if not self.keep and self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)
        elif self.keep:
            log(f"kept {self.work}")

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def unexpected_exits(self) -> list[str]:
        """Nodes that died since the last call without the harness killing or stopping them."""
        return [m for m in (n.check_death() for n in self.members.values()) if m]

    def logs(self, lines: int = 80) -> str:
        if lines <= 0:
            return ""
        return "\n".join(f"===== node {n.id}: {n.log_path} (last {lines} lines) =====\n{n.tail(lines)}"
                         for n in self.members.values())

    # -- metadata through confluent-kafka ----------------------------------------------------
    def admin(self, bootstrap: str | None = None):
        """An AdminClient on the running nodes (kept: a future dies with its client)."""
        from confluent_kafka.admin import AdminClient
        bootstrap = bootstrap or self.live_bootstrap()
        if bootstrap not in self._admins:
            self._admins[bootstrap] = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000,
                                                   "client.id": "petrel-cluster-harness", "log_level": 2})
        return self._admins[bootstrap]

    def forget_admin(self) -> None:
        """Drop the cached AdminClients: librdkafka keeps a dead controller id in its metadata for
        minutes, so after a failure the next attempt starts from fresh metadata."""
        self._admins.clear()

    def describe(self, topic: str) -> str:
        """{partition: (leader, replicas, isr)} as librdkafka sees it, for messages."""
        try:
            return str({i: (p.leader, list(p.replicas), list(p.isrs)) for i, p in sorted(self.partitions(topic).items())})
        except Exception as e:  # noqa: BLE001
            return f"(metadata unavailable: {e})"

    def partitions(self, topic: str, timeout: float = 5):
        """{partition: PartitionMetadata(leader, replicas, isrs)} from librdkafka, or {} when unknown."""
        md = self.admin().list_topics(topic=topic, timeout=timeout)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return {}
        return dict(t.partitions)

    def leader(self, topic: str, partition: int, timeout: float = 30, exclude: set[int] | None = None) -> int:
        """The partition's leader (a node id not in `exclude`), waiting up to `timeout` s."""
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                p = self.partitions(topic).get(partition)
                last = p and (p.leader, p.isrs)
                if p is not None and p.leader in self.members and p.leader not in (exclude or set()):
                    return p.leader
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
                self.forget_admin()
            time.sleep(0.1)
        raise ClusterError(f"{topic}-{partition}: no leader outside {sorted(exclude or [])} after "
                           f"{timeout:.0f}s (last (leader, isr): {last})")

    def quorum_leader(self) -> tuple[int, dict]:
        """The Raft leader (active controller) the running nodes agree on via DescribeQuorum, or -1;
        and each node's answer {node: (leader, epoch) or error}."""
        answers = {}
        for n in self.members.values():
            if n.alive and not n.stopped_by_signal:
                try:
                    q = quorum_from(n.client_port, timeout=3)
                    answers[n.id] = (q.leader_id, q.leader_epoch)
                except Exception as e:  # noqa: BLE001
                    answers[n.id] = f"{type(e).__name__}: {e}"
        leaders = {a for a in answers.values() if isinstance(a, tuple)}
        if len(leaders) == 1 and next(iter(leaders))[0] in self.members:
            return next(iter(leaders))[0], answers
        return -1, answers

    def controller(self, timeout: float = 30, exclude: set[int] | None = None) -> int:
        """The active controller's node id, waiting up to `timeout` s: the Raft leader every running
        node names in DescribeQuorum, else DescribeCluster's controller (in KRaft, Kafka brokers
        answer a random broker there, so DescribeQuorum comes first)."""
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader, answers = self.quorum_leader()
            if leader in self.members and leader not in (exclude or set()):
                return leader
            last = f"DescribeQuorum answers {answers}"
            if any(isinstance(a, tuple) for a in answers.values()):
                time.sleep(0.2)
                continue
            try:
                c = self.admin().describe_cluster(request_timeout=5).result(6).controller
                last = c
                if c is not None and c.id in self.members and c.id not in (exclude or set()):
                    return c.id
            except Exception as e:  # noqa: BLE001
                last = e
                self.forget_admin()
            time.sleep(0.2)
        raise ClusterError(f"no active controller outside {sorted(exclude or [])} after {timeout:.0f}s (last: {last})")

    def create_topic(self, topic: str, partitions: int, replication: int = 3, configs: dict | None = None,
                     timeout: float = 30) -> float:
        """CreateTopics (retried until `timeout`), then every partition has a leader. Returns seconds."""
        from confluent_kafka.admin import NewTopic
        start = time.monotonic()
        deadline = start + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                fut = self.admin().create_topics(
                    [NewTopic(topic, num_partitions=partitions, replication_factor=replication,
                              config=configs or {})], request_timeout=10)[topic]
                fut.result(12)
                break
            except Exception as e:  # noqa: BLE001
                last = e
                if "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                self.forget_admin()
                time.sleep(0.2)
        else:
            raise ClusterError(f"CreateTopics {topic} did not succeed within {timeout:.0f}s (last: {last})")
        self.wait_leaders(topic, partitions, max(1.0, deadline - time.monotonic()))
        return time.monotonic() - start

    def wait_leaders(self, topic: str, partitions: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                ps = self.partitions(topic)
                last = {i: (p.leader, p.isrs) for i, p in ps.items()}
                if len(ps) == partitions and all(p.leader in self.members for p in ps.values()):
                    return
            except Exception as e:  # noqa: BLE001
                last = e
                self.forget_admin()
            time.sleep(0.1)
        raise ClusterError(f"{topic}: not every partition has a leader after {timeout:.0f}s (last: {last})")

    def wait_isr(self, topic: str, want: set[int] | None = None, timeout: float = 60) -> float:
        """Until every partition's ISR contains `want` (default: all nodes), via describe_topics."""
        from confluent_kafka import TopicCollection
        want = want or set(self.members)
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            try:
                desc = self.admin().describe_topics(TopicCollection([topic]), request_timeout=5)[topic].result(6)
                last = {p.id: (p.leader.id if p.leader else None, sorted(n.id for n in p.isr)) for p in desc.partitions}
                if desc.partitions and all(want <= {n.id for n in p.isr} for p in desc.partitions):
                    return time.monotonic() - start
            except Exception as e:  # noqa: BLE001
                last = e
                self.forget_admin()
            time.sleep(0.2)
        raise ClusterError(f"{topic}: ISR does not contain {sorted(want)} after {timeout:.0f}s "
                           f"(last {{partition: (leader, isr)}}: {last})")

    # -- per-node views ----------------------------------------------------------------------
    def metadata_from(self, node_id: int, topics: list[str] | None = None, timeout: float = 5) -> "NodeMetadata":
        return metadata_from(self.node(node_id).client_port, topics, timeout)

    def wait_formed(self, timeout: float = 60) -> float:
        """Until every running node reports (in its own Metadata answer) the same cluster id and
        every node as a broker, and an active controller is known (see controller()).
        Returns seconds."""
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            ids = [n.id for n in self.members.values() if n.alive and not n.stopped_by_signal]
            try:
                views = {i: self.metadata_from(i) for i in ids}
                last = {i: {"cluster": v.cluster_id, "brokers": sorted(v.brokers), "controller": v.controller_id}
                        for i, v in views.items()}
                first = next(iter(last.values()))
                if first["brokers"] == sorted(self.members) and all(
                        (v["cluster"], v["brokers"]) == (first["cluster"], first["brokers"]) for v in last.values()):
                    self.controller(timeout=max(1.0, timeout - (time.monotonic() - start)))
                    return time.monotonic() - start
            except Exception as e:  # noqa: BLE001
                last = e
            time.sleep(0.2)
        dead = [f"node {n.id} is not running (exit status {n.proc.returncode if n.proc else None})"
                for n in self.members.values() if not n.alive]
        raise ClusterError(f"the cluster did not form within {timeout:.0f}s: every node must report the same "
                           f"cluster id, brokers {sorted(self.members)} and an active controller; last views "
                           f"{{node: Metadata answer}}: {last}; DescribeQuorum: {self.quorum_leader()[1]}"
                           + (f"; {'; '.join(dead)}" if dead else ""))

    def wait_converged(self, topics: list[str], nodes: list[int] | None = None, timeout: float = 30) -> float:
        """Until every listed node (default: the live ones) reports, for each topic, the same partitions,
        replicas, leaders, leader epochs and ISRs, with a leader for every partition, and names some
        node as controller (not compared: KRaft brokers may name any broker there)."""
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            ids = nodes or [n.id for n in self.members.values() if n.alive and not n.stopped_by_signal]
            try:
                views = {i: self.metadata_from(i, topics) for i in ids}
                summary = {i: {t: v.topics.get(t) for t in topics} for i, v in views.items()}
                last = {i: (views[i].controller_id, summary[i]) for i in views}
                first = next(iter(summary.values()))
                complete = all(first.get(t) and all(p.leader in self.members for p in first[t].values())
                               for t in topics)
                if (complete and all(v.controller_id in self.members for v in views.values())
                        and all(s == first for s in summary.values())):
                    return time.monotonic() - start
            except Exception as e:  # noqa: BLE001
                last = e
            time.sleep(0.2)
        raise ClusterError(f"metadata of {topics} did not converge on nodes {nodes or 'alive'} within "
                           f"{timeout:.0f}s; last views {{node: (controller, topics)}}: {last}")

    # -- on-disk replicas ---------------------------------------------------------------------
    def replica_log_bytes(self, node_id: int, topic: str, partition: int) -> bytes | None:
        """The concatenated .log segments of one replica (None when the node has no such dir)."""
        d = os.path.join(self.node(node_id).data_dir, f"{topic}-{partition}")
        if not os.path.isdir(d):
            return None
        data = b""
        for name in sorted(f for f in os.listdir(d) if f.endswith(".log")):
            with open(os.path.join(d, name), "rb") as f:
                data += f.read()
        return data


@dataclass
class PartitionView:
    error: int
    leader: int
    leader_epoch: int
    replicas: tuple
    isr: tuple


@dataclass
class NodeMetadata:
    brokers: dict = field(default_factory=dict)      # node id -> (host, port)
    controller_id: int = -1
    cluster_id: str | None = None
    topics: dict = field(default_factory=dict)       # name -> {partition: PartitionView}
    topic_errors: dict = field(default_factory=dict)  # name -> error code


def _exchange(port: int, request: bytes, timeout: float) -> bytes:
    """One size-prefixed request/response on a fresh connection to 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(request)) + request)

        def recv(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise ClusterError(f"127.0.0.1:{port} closed the connection")
                buf += chunk
            return buf
        return recv(struct.unpack(">i", recv(4))[0])


@dataclass
class QuorumView:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: dict  # replica id -> log end offset


def quorum_from(port: int, timeout: float = 5, version: int = 2) -> QuorumView:
    """DescribeQuorum (flexible; v2 as kafka-metadata-quorum.sh sends, or v0/v1) for
    __cluster_metadata-0, asked of the node at 127.0.0.1:port.  Non-leaders answer an error."""
    def uvarint(v):
        out = b""
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])
    name = b"__cluster_metadata"
    client = b"petrel-cluster-harness"
    header = struct.pack(">hhih", 55, version, 2, len(client)) + client + b"\x00"
    body = (uvarint(2) + uvarint(len(name) + 1) + name + uvarint(2) + struct.pack(">i", 0) + b"\x00" + b"\x00"
            + b"\x00")
    data = _exchange(port, header + body, timeout)
    pos = 4  # correlation id

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def uv():
        nonlocal pos
        shift = value = 0
        while True:
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    def skip_string():
        nonlocal pos
        n = uv()
        pos += max(0, n - 1)

    def skip_tags():
        nonlocal pos
        for _ in range(uv()):
            uv()
            pos += uv()

    def replicas():
        out = {}
        for _ in range(uv() - 1):
            rid = take(">i")
            if version >= 2:
                pos_skip(16)  # ReplicaDirectoryId
            out[rid] = take(">q")
            if version >= 1:
                take(">q"), take(">q")  # LastFetchTimestamp, LastCaughtUpTimestamp
            skip_tags()
        return out

    def pos_skip(n):
        nonlocal pos
        pos += n

    skip_tags()  # response header v1
    err = take(">h")
    if version >= 2:
        skip_string()  # ErrorMessage
    if err:
        raise ClusterError(f"DescribeQuorum v{version} on 127.0.0.1:{port}: error code {err}")
    views = []
    for _ in range(uv() - 1):
        skip_string()  # topic name
        for _ in range(uv() - 1):
            take(">i")
            perr = take(">h")
            if version >= 2:
                skip_string()
            leader, epoch, hw = take(">i"), take(">i"), take(">q")
            voters = replicas()
            replicas()  # observers
            skip_tags()
            if perr:
                raise ClusterError(f"DescribeQuorum v{version} on 127.0.0.1:{port}: partition error code {perr}")
            views.append(QuorumView(leader, epoch, hw, voters))
        skip_tags()
    if not views:
        raise ClusterError(f"DescribeQuorum v{version} on 127.0.0.1:{port}: no partition in the answer")
    return views[0]


def metadata_from(port: int, topics: list[str] | None = None, timeout: float = 5) -> NodeMetadata:
    """A Metadata v7 request to 127.0.0.1:port (that node's own view)."""
    def s16(v): return struct.pack(">h", v)
    def s32(v): return struct.pack(">i", v)
    def string(v): b = v.encode(); return s16(len(b)) + b
    body = (s32(-1) if topics is None else s32(len(topics)) + b"".join(string(t) for t in topics)) + b"\x00"
    header = s16(3) + s16(7) + s32(1) + string("petrel-cluster-harness")
    data = _exchange(port, header + body, timeout)
    pos = 4  # correlation id

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def nstring():
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        v = data[pos:pos + n].decode()
        pos += n
        return v

    def int_array():
        return tuple(take(">i") for _ in range(take(">i")))

    md = NodeMetadata()
    take(">i")  # throttle
    for _ in range(take(">i")):
        nid = take(">i"); host = nstring(); p = take(">i"); nstring()  # rack
        md.brokers[nid] = (host, p)
    md.cluster_id = nstring()
    md.controller_id = take(">i")
    for _ in range(take(">i")):
        err = take(">h"); name = nstring(); take(">b")
        parts = {}
        for _ in range(take(">i")):
            perr = take(">h"); idx = take(">i"); leader = take(">i"); epoch = take(">i")
            replicas = int_array(); isr = tuple(sorted(int_array())); int_array()  # offline
            parts[idx] = PartitionView(perr, leader, epoch, replicas, isr)
        md.topic_errors[name] = err
        if err == 0:
            md.topics[name] = parts
    return md
