import Foundation
import Testing

/// Issue 5's coordinator failover with real processes: `scripts/cluster/coordinator_failover.py`
/// kills (-9) the node that coordinates a confluent-kafka consumer group in a three-node cluster;
/// the group must find the new coordinator and resume from its last commits (nothing missing,
/// committed offsets never going back). Real processes for about a minute: runs with
/// `PETREL_CI=1` only, like the other cluster fault tests (ClusterFaultTests.swift).
@Suite("Group coordinator failover (three nodes)", .serialized)
struct CoordinatorFailoverTests {
    @Test("kill -9 of the group coordinator: the group resumes from its committed offsets",
          .enabled(if: ClusterFaultTests.scenariosEnabled),
          .timeLimit(.minutes(5)))
    func coordinatorKill() throws {
        try InteropEnvironment.requirePresent(ClusterFaultTests.skipReason)
        let run = try InteropEnvironment.run(
            ["python3", "scripts/cluster/coordinator_failover.py", "--rounds", "1", "--timeout", "150"], timeout: 240)
        InteropEnvironment.check(run, name: "coordinator-failover")
    }
}
