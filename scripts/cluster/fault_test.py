#!/usr/bin/env python3
"""Fault tests of a 3-node Petrel cluster: real processes on 127.0.0.1, a real librdkafka client.

    scripts/cluster/fault_test.py                          # every scenario, 1 round each
    scripts/cluster/fault_test.py --rounds 3 --timeout 240 leader-kill sigstop
    scripts/cluster/fault_test.py --self-test              # the verifier on synthetic logs
    scripts/cluster/fault_test.py --keep -v leader-kill    # keep data and node logs, print them

Each scenario starts its own cluster (free ports, a temporary directory, command lines from
`scripts/interop/broker.sh cluster-argv`), and in each round creates a topic (--partitions, 4,
replication factor 3, min.insync.replicas=2) while an idempotent confluent-kafka producer
(acks=all) sends numbered records at --rate records/s:

  leader-kill      kill -9 the leader of partition 0, keep producing, restart it, wait until it is
                   back in every ISR
  controller-kill  kill -9 the active controller; CreateTopics (RF 2) must succeed within the round
                   (time reported); metadata converges on the live nodes; restart; converges on all
  sigstop          SIGSTOP the leader of partition 0 for broker.session.timeout.ms + 3 s, SIGCONT:
                   the old leader learns the new leader epoch (steps down), rejoins the ISR
  wipe             stop a node (SIGTERM), delete its data directory, start it: it re-replicates
                   and rejoins every ISR (time reported)
  two-down         kill -9 both followers of partition 0: no record sent during the outage is
                   acknowledged; a separate acks=all probe (to a topic of its own) fails (error
                   reported); restart one: produce resumes (time reported); restart the other

After every round: the records are read back and every acknowledged one must be there, once, in
order, at its acknowledged offset (workload.verify_partition; crash_test.verify where nothing
failed), offsets contiguous, and the replicas' .log files of every partition byte-identical.
Figures per round: failover (kill/stop -> first acks=all acknowledgement of a record sent after
it, on the partitions the node led), acked, lost (must be 0), duplicates.

Bounds: --timeout per round (default 150 s), --budget for the whole run (default 3600 s; the
build of petrel is not counted; rounds that do not fit fail as not run); the cluster is
stopped (SIGCONT, SIGTERM, SIGKILL after 15 s) whatever happens.  Exit status 0 = every round
passed.  On failure the last --log-lines lines of every node's log are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, log, petrel_bin  # noqa: E402
from workload import NumberedProducer, VerifyFailure, read_partitions, verify_partition  # noqa: E402
import workload  # noqa: E402

SCENARIOS = ["leader-kill", "controller-kill", "sigstop", "wipe", "two-down"]


class Timeout(Exception):
    pass


class ScenarioFailure(Exception):
    pass


def setting(overrides: list[str], key: str, default: int) -> int:
    for kv in reversed(overrides):
        k, _, v = kv.partition("=")
        if k.strip() == key:
            return int(v)
    return default


class Round:
    """One round of one scenario: its cluster, topic, producer and figures."""

    def __init__(self, args, cluster: Cluster, scenario: str, number: int):
        self.args, self.c, self.scenario, self.number = args, cluster, scenario, number
        self.topic = f"{scenario}-{number}-{random.randrange(1 << 30):08x}"
        self.partitions = args.partitions
        self.figures: dict = {"scenario": scenario, "round": number}
        self.producer: NumberedProducer | None = None
        self.problems: list[str] = []
        self.rng = random.Random(args.seed * 1000 + number if args.seed is not None else None)

    def pause(self, lo: float, hi: float) -> None:
        time.sleep(self.rng.uniform(lo, hi))

    def setup(self) -> None:
        self.figures["create_topic_s"] = round(self.c.create_topic(
            self.topic, self.partitions, 3, {"min.insync.replicas": "2"}, timeout=30), 3)
        self.c.wait_isr(self.topic, timeout=30)
        self.producer = NumberedProducer(self.c.bootstrap, self.topic, self.partitions, rate=self.args.rate,
                                         config={"message.timeout.ms": self.args.message_timeout_ms}).start()
        if not self.producer.wait_acks(100, 20):
            raise ScenarioFailure(f"the producer got {self.producer.acked_count} acks in 20 s before any fault "
                                  f"(fatal: {self.producer.fatal}, record errors: {dict(self.producer.failure_kinds())}, "
                                  f"client errors: {dict(self.producer.client_errors)}; "
                                  f"{{partition: (leader, replicas, isr)}}: {self.c.describe(self.topic)})")
        self.pause(0.3, 1.5)

    def led_by(self, node_id: int) -> list[int]:
        return sorted(p for p, m in self.c.partitions(self.topic).items() if m.leader == node_id)

    def wait_failover(self, t: float, partitions: list[int], what: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.producer.first_ack_after(t, partitions)
            if f is not None:
                self.figures["failover_s"] = round(f, 3)
                log(f"failover after {what}: first acks=all ack of a record sent after it, on partitions "
                    f"{partitions}, {f:.3f} s later")
                return f
            if self.producer.fatal:
                raise ScenarioFailure(f"producer fatal error: {self.producer.fatal}")
            time.sleep(0.05)
        raise ScenarioFailure(f"no acks=all acknowledgement on partitions {partitions} within {timeout:.0f}s "
                              f"after {what} (record errors so far: {dict(self.producer.failure_kinds())}, "
                              f"client errors: {dict(self.producer.client_errors)}; "
                              f"{{partition: (leader, replicas, isr)}}: {self.c.describe(self.topic)})")

    def finish(self) -> None:
        """Stop producing, read back, verify, compare replicas."""
        p = self.producer
        undelivered = p.stop(flush_timeout=30)
        self.figures.update(sent=p.sent_count, acked=p.acked_count, failed=p.failed_count(),
                            undelivered=undelivered, record_errors=dict(p.failure_kinds()),
                            client_errors=dict(p.client_errors))
        if p.fatal:
            self.problems.append(f"producer fatal error: {p.fatal}")
        if p.double_acks:
            self.problems.append(f"{len(p.double_acks)} records acknowledged twice: {p.double_acks[:3]}")
        if p.acked_without_offset:
            self.figures["acked_without_offset"] = len(p.acked_without_offset)
            log(f"warning: {len(p.acked_without_offset)} records were acknowledged without an offset "
                f"(ProduceResponse base offset -1), first (partition, number): {p.acked_without_offset[:5]}")
        want_end = {i: max(p.acked[i].values()) + 1 for i in range(self.partitions) if p.acked[i]}
        records = read_partitions(self.c.bootstrap, self.topic, self.partitions, want_end, timeout=60)
        lost = dups = unacked = 0
        for i in range(self.partitions):
            r = verify_partition(i, p.acked[i], records[i], idempotent=True, failed=p.failed[i])
            lost += r.lost
            dups += r.duplicates
            unacked += r.unacked_present
            self.problems += [f"partition {i}: {x}" for x in r.problems]
        self.figures.update(lost=lost, duplicates=dups, unacked_in_log=unacked,
                            read=sum(len(r) for r in records.values()))
        self.compare_replicas()

    def compare_replicas(self, timeout: float = 20) -> None:
        """Every replica of every partition: byte-identical .log contents (followers may need a
        moment to fetch the last batches)."""
        deadline = time.monotonic() + timeout
        while True:
            diffs = []
            for i in range(self.partitions):
                logs = {n: self.c.replica_log_bytes(n, self.topic, i) for n in self.c.members}
                missing = [n for n, b in logs.items() if b is None]
                sizes = {n: len(b) for n, b in logs.items() if b is not None}
                present = [b for b in logs.values() if b is not None]
                if missing:
                    diffs.append(f"partition {i}: no replica directory on nodes {missing}")
                elif any(b != present[0] for b in present):
                    shortest = min(present, key=len)
                    prefix = all(b[:len(shortest)] == shortest for b in present)
                    diffs.append(f"partition {i}: replica .log bytes differ ({'one is a prefix' if prefix else 'DIVERGENT'}), "
                                 f"sizes {sizes}")
            if not diffs:
                self.figures["replicas_identical"] = True
                return
            if time.monotonic() > deadline:
                self.figures["replicas_identical"] = False
                self.problems += diffs
                return
            time.sleep(0.5)


# -- scenarios -----------------------------------------------------------------------------------

def leader_kill(r: Round) -> None:
    c = r.c
    victim = c.leader(r.topic, 0)
    led = r.led_by(victim)
    t = time.monotonic()
    c.node(victim).kill9()
    r.figures.update(victim=victim, victim_led=led)
    new = c.leader(r.topic, 0, exclude={victim}, timeout=60)
    r.figures["new_leader_seen_s"] = round(time.monotonic() - t, 3)
    log(f"partition 0: leader {victim} -> {new}")
    r.wait_failover(t, led, f"kill -9 of leader {victim}")
    r.pause(0.5, 2.0)
    c.node(victim).start()
    r.figures["rejoin_isr_s"] = round(c.wait_isr(r.topic, timeout=60), 3)
    r.pause(0.2, 1.0)


def controller_kill(r: Round) -> None:
    c = r.c
    victim = c.controller()
    led = r.led_by(victim)
    t = time.monotonic()
    c.node(victim).kill9()
    r.figures.update(victim=victim, victim_led=led)
    after = f"{r.topic}-after"
    r.figures["create_topic_after_kill_s"] = round(c.create_topic(after, 2, 2, timeout=60), 3)
    log(f"CreateTopics {after} (RF 2) succeeded {r.figures['create_topic_after_kill_s']:.3f} s after the kill")
    new = c.controller(exclude={victim}, timeout=60)
    r.figures.update(new_controller=new, new_controller_seen_s=round(time.monotonic() - t, 3))
    if led:
        r.wait_failover(t, led, f"kill -9 of controller {victim}")
    live = [n for n in c.members if n != victim]
    r.figures["converged_live_s"] = round(c.wait_converged([r.topic, after], nodes=live, timeout=30), 3)
    c.node(victim).start()
    r.figures["converged_all_s"] = round(c.wait_converged([r.topic, after], nodes=list(c.members), timeout=60), 3)
    c.wait_isr(r.topic, timeout=60)


def sigstop(r: Round) -> None:
    c = r.c
    session_ms = setting(r.args.override, "broker.session.timeout.ms", 9000)
    victim = c.leader(r.topic, 0)
    led = r.led_by(victim)
    before = c.metadata_from(victim, [r.topic]).topics[r.topic]
    epochs = {p: before[p].leader_epoch for p in led}
    hold = session_ms / 1000 + 3 + r.rng.uniform(0, 1)
    t = time.monotonic()
    c.node(victim).sigstop()
    r.figures.update(victim=victim, victim_led=led, stopped_s=round(hold, 2))
    try:
        new = c.leader(r.topic, 0, exclude={victim}, timeout=hold + 30)
        r.figures["new_leader_seen_s"] = round(time.monotonic() - t, 3)
        log(f"partition 0: leader {victim} -> {new} while {victim} is stopped")
        r.wait_failover(t, led, f"SIGSTOP of leader {victim}", timeout=hold + 30)
        rest = hold - (time.monotonic() - t)
        if rest > 0:
            time.sleep(rest)
    finally:
        if c.node(victim).alive:
            c.node(victim).sigcont()
    tc = time.monotonic()
    # the stale leader must learn the new epoch: its own metadata shows a higher leader epoch
    deadline = tc + 30
    last = None
    while True:
        try:
            now = c.metadata_from(victim, [r.topic]).topics[r.topic]
            last = {p: (now[p].leader, now[p].leader_epoch) for p in led}
            if all(now[p].leader_epoch > epochs[p] for p in led):
                r.figures["stale_leader_stepped_down_s"] = round(time.monotonic() - tc, 3)
                break
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() > deadline:
            raise ScenarioFailure(f"30 s after SIGCONT node {victim} still reports the old leader epochs "
                                  f"{epochs} for partitions {led}: {last}")
        time.sleep(0.1)
    r.figures["rejoin_isr_s"] = round(c.wait_isr(r.topic, timeout=60), 3)


def wipe(r: Round) -> None:
    c = r.c
    victim = sorted(c.members)[r.number % len(c.members)]
    r.figures["victim"] = victim
    r.figures["victim_led"] = r.led_by(victim)
    if not r.producer.wait_acks(2000, 30):
        log(f"only {r.producer.acked_count} acks before the wipe")
    t = time.monotonic()
    c.node(victim).stop()
    c.node(victim).wipe()
    c.node(victim).start()
    r.figures["restart_s"] = round(time.monotonic() - t, 3)
    r.figures["rejoin_isr_s"] = round(c.wait_isr(r.topic, timeout=90), 3)
    log(f"wiped node {victim} is back in every ISR {r.figures['rejoin_isr_s']:.3f} s after it started")
    c.wait_converged([r.topic], nodes=list(c.members), timeout=30)


def two_down(r: Round) -> None:
    from confluent_kafka import Producer
    c = r.c
    # the probe writes to a topic of its own: a record it got into a log must not disturb the check
    probe_topic = f"{r.topic}-probe"
    c.create_topic(probe_topic, 1, 3, {"min.insync.replicas": "2"})
    c.wait_isr(probe_topic, timeout=30)
    leader = c.leader(r.topic, 0)
    followers = [n for n in c.members if n != leader]
    for n in followers:
        c.node(n).kill9()
    t = time.monotonic()
    r.figures.update(leader=leader, killed=followers)
    outage = 5 + r.rng.uniform(0, 2)
    # a separate acks=all producer: its record must fail (never a false acknowledgement)
    probe_result: list = []
    probe = Producer({"bootstrap.servers": c.live_bootstrap(), "acks": "all", "enable.idempotence": False,
                      "retries": 0, "message.timeout.ms": 5000, "request.timeout.ms": 4000,
                      "client.id": "petrel-fault-probe", "log_level": 2})
    probe.produce(probe_topic, key=b"probe", value=b"must not be acknowledged", partition=0,
                  on_delivery=lambda err, msg: probe_result.append(err.name() if err else f"ACKED at {msg.offset()}"))
    probe.flush(15)
    r.figures["probe"] = probe_result[0] if probe_result else "no answer in 15 s"
    log(f"acks=all probe with two nodes down: {r.figures['probe']}")
    if probe_result and probe_result[0].startswith("ACKED"):
        r.problems.append(f"acks=all probe acknowledged with two of three nodes down ({probe_result[0]})")
    rest = outage - (time.monotonic() - t)
    if rest > 0:
        time.sleep(rest)
    false_acks = r.producer.acks_of_records_sent_after(t)
    r.figures["false_acks"] = len(false_acks)
    if false_acks:
        r.problems.append(f"{len(false_acks)} records sent after both followers died were acknowledged "
                          f"(acks=all, min.insync.replicas=2), first (partition, number, offset): {false_acks[:5]}")
    t_up = time.monotonic()
    c.node(followers[0]).start()
    r.figures["resume_after_one_back_s"] = round(r.wait_failover(t_up, list(range(r.partitions)),
                                                                 f"restart of node {followers[0]}", timeout=60), 3)
    r.figures["failover_s"] = None  # not a failover: the outage is deliberate
    c.node(followers[1]).start()
    r.figures["rejoin_isr_s"] = round(c.wait_isr(r.topic, timeout=90), 3)


def salvage(args, c: Cluster, r: Round) -> None:
    """After a failed round: bring every node back and still check what was acknowledged (bounded),
    so that a slow failover and a lost record are told apart."""
    limit = max(20.0, min(90.0, args.deadline - time.monotonic()))
    log(f"round failed: checking the acknowledged records anyway (at most {limit:.0f}s)")
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        for node in c.members.values():
            if node.alive and node.stopped_by_signal:
                node.sigcont()
            elif not node.alive:
                node.start()
        r.finish()
        r.figures["verified_after_failure"] = True
    except Exception as e:  # noqa: BLE001
        r.problems.append(f"checking the acknowledged records after the failure did not complete: "
                          f"{type(e).__name__}: {e}")
        if r.producer is not None and r.producer.producer is not None:
            try:
                r.producer.stop(flush_timeout=1)
            except Exception:  # noqa: BLE001
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        r.problems += c.unexpected_exits()


RUNNERS = {"leader-kill": leader_kill, "controller-kill": controller_kill, "sigstop": sigstop,
           "wipe": wipe, "two-down": two_down}


# -- driver ------------------------------------------------------------------------------------

def run_scenario(args, scenario: str) -> list[dict]:
    results = []
    overrides = list(args.override)
    with Cluster(nodes=3, base_port=args.base_port, controller_base_port=args.controller_base_port,
                 overrides=overrides, keep=args.keep, env=args.node_env) as c:
        failed = False
        try:
            signal.setitimer(signal.ITIMER_REAL, max(1.0, min(args.timeout, args.deadline - time.monotonic())))
            c.start(timeout=60)
            log(f"cluster formed in {c.wait_formed(timeout=60):.2f}s")
            signal.setitimer(signal.ITIMER_REAL, 0)
            for n in range(1, args.rounds + 1):
                r = Round(args, c, scenario, n)
                limit = min(args.timeout, args.deadline - time.monotonic())
                if limit < 20:
                    r.problems.append(f"not run: the --budget of {args.budget:.0f}s is used up")
                    r.figures.update({"pass": False, "problems": r.problems})
                    results.append(r.figures)
                    print_round(r.figures)
                    failed = True
                    break
                log(f"=== {scenario} round {n}/{args.rounds}: topic {r.topic}")
                signal.setitimer(signal.ITIMER_REAL, limit)
                try:
                    for node in c.members.values():  # a previous round may have left one down
                        if not node.alive:
                            node.start()
                    r.setup()
                    RUNNERS[scenario](r)
                    r.finish()
                except (ScenarioFailure, ClusterError, VerifyFailure, Timeout) as e:
                    r.problems.append(f"{type(e).__name__}: {e}")
                except Exception as e:  # noqa: BLE001 - any client error is a failure with logs
                    r.problems.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    r.problems += c.unexpected_exits()  # a crash fails the round even if no data was lost
                if r.problems and r.producer is not None and r.producer.producer is not None:
                    salvage(args, c, r)
                r.figures["pass"] = not r.problems
                r.figures["problems"] = r.problems
                results.append(r.figures)
                print_round(r.figures)
                if r.problems:
                    failed = True
                    if args.stop_on_failure:
                        break
        except (ClusterError, Timeout) as e:
            results.append({"scenario": scenario, "round": 0, "pass": False,
                            "problems": [f"cluster start: {type(e).__name__}: {e}"] + c.unexpected_exits()})
            print_round(results[-1])
            failed = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if failed or args.verbose:
                print(c.logs(args.log_lines), flush=True)
    return results


def print_round(f: dict) -> None:
    status = "PASS" if f.get("pass") else "FAIL"
    keys = ["failover_s", "acked", "lost", "duplicates", "sent", "failed", "undelivered", "victim", "victim_led",
            "new_leader_seen_s", "rejoin_isr_s", "create_topic_after_kill_s", "new_controller",
            "converged_live_s", "converged_all_s", "stale_leader_stepped_down_s", "probe", "false_acks",
            "resume_after_one_back_s", "replicas_identical", "acked_without_offset", "record_errors"]
    shown = ", ".join(f"{k}={f[k]}" for k in keys if k in f)
    print(f"RESULT {f['scenario']} round {f['round']}: {status}  {shown}", flush=True)
    for p in f.get("problems", []):
        print(f"  problem: {p}", flush=True)


def summary(results: list[dict]) -> None:
    print("\n| scenario | round | result | failover s | acked | lost | duplicates | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for f in results:
        notes = []
        for k in ("rejoin_isr_s", "create_topic_after_kill_s", "stale_leader_stepped_down_s", "probe",
                  "resume_after_one_back_s"):
            if f.get(k) is not None:
                notes.append(f"{k}={f[k]}")
        print(f"| {f['scenario']} | {f['round']} | {'pass' if f.get('pass') else 'FAIL'} | "
              f"{f.get('failover_s', '-')} | {f.get('acked', '-')} | {f.get('lost', '-')} | "
              f"{f.get('duplicates', '-')} | {', '.join(notes)} |")
    print(flush=True)


def main() -> int:
    # A parent may have spawned us with signals blocked (Foundation's Process on Linux does).
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help=f"any of {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per scenario (1)")
    ap.add_argument("--timeout", type=float, default=150, help="bound per round in seconds (150)")
    ap.add_argument("--budget", type=float, default=3600,
                    help="bound of the whole run in seconds: no round starts past it, rounds are cut "
                         "short to fit (3600); rounds not run fail")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1000, help="records/s the producer sends (1000)")
    ap.add_argument("--message-timeout-ms", type=int, default=300000,
                    help="the producer's message.timeout.ms (300000, librdkafka's default: longer than a "
                         "round, so a stalled cluster shows as a stall, not as timed-out records that an "
                         "idempotent producer may then duplicate after its epoch bump)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="extra broker setting for every node (repeatable)")
    ap.add_argument("--base-port", type=int, help="client port of node 1 (default: free ports)")
    ap.add_argument("--controller-base-port", type=int)
    ap.add_argument("--seed", type=int, help="seed for the random timings")
    ap.add_argument("--log-level", help="PETREL_LOG_LEVEL of the nodes")
    ap.add_argument("--log-lines", type=int, default=150, help="node log lines printed on failure (150)")
    ap.add_argument("--stop-on-failure", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (data and node logs)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="print node logs also on success")
    ap.add_argument("--self-test", action="store_true", help="only check the verifier on synthetic logs")
    args = ap.parse_args()
    if args.self_test:
        workload.self_test()
        return 0
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown}; choose from {SCENARIOS}")
    scenarios = args.scenarios or SCENARIOS
    args.node_env = {"PETREL_LOG_LEVEL": args.log_level} if args.log_level else {}

    def on_alarm(signum, frame):
        raise Timeout(f"round exceeded --timeout {args.timeout:.0f}s")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)

    log(f"petrel: {petrel_bin()}")
    args.deadline = time.monotonic() + args.budget  # the build is not counted
    results = []
    try:
        for s in scenarios:
            results += run_scenario(args, s)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cluster stopped")
        return 130
    finally:
        summary(results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    ok = bool(results) and all(f.get("pass") for f in results)
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
