import MetadataQuorum
import Testing

/// Randomized runs: faults for `steps` steps, then liveness once they stop. A failure names its
/// seed; `replay(seed:nodes:)` below reruns exactly that one.
enum Runs {
    static func run(seed: UInt64, nodes: Int, steps: Int) throws -> Simulation {
        var options = SimulationOptions()
        options.nodes = nodes
        var simulation = Simulation(seed: seed, options: options)
        try simulation.run(steps: steps)
        try simulation.checkLiveness()
        try simulation.invariants.checkFinal(simulation)
        return simulation
    }

    static func sweep(seeds: Range<UInt64>, nodes: Int, steps: Int) {
        for seed in seeds {
            do {
                _ = try run(seed: seed, nodes: nodes, steps: steps)
            } catch {
                Issue.record("\(error)")
                return
            }
        }
    }
}

@Suite struct SimulationTests {
    @Test(arguments: 0..<8)
    func threeNodes(chunk: Int) {
        let base = UInt64(chunk) * 250
        Runs.sweep(seeds: base..<base + 250, nodes: 3, steps: 1000)
    }

    @Test(arguments: 0..<4)
    func fiveNodes(chunk: Int) {
        let base = 10_000 + UInt64(chunk) * 100
        Runs.sweep(seeds: base..<base + 100, nodes: 5, steps: 1000)
    }

    /// Snapshots taken often: followers that fall behind a leader's log start load its snapshot,
    /// and every invariant (committed prefixes, Log Matching, leader completeness) still holds.
    @Test(arguments: 0..<2)
    func frequentSnapshots(chunk: Int) throws {
        var installs = 0
        for seed in UInt64(20_000 + chunk * 150)..<UInt64(20_000 + (chunk + 1) * 150) {
            var options = SimulationOptions()
            options.snapshotPerMille = 80
            var simulation = Simulation(seed: seed, options: options)
            do {
                try simulation.run(steps: 1500)
                try simulation.checkLiveness()
                try simulation.invariants.checkFinal(simulation)
            } catch {
                Issue.record("\(error)")
                return
            }
            installs += simulation.snapshotInstalls
        }
        #expect(installs > 0, "no follower ever needed a snapshot: the sweep does not exercise FetchSnapshot")
    }

    /// The same seed gives the same run.
    @Test func deterministic() throws {
        let a = try Runs.run(seed: 42, nodes: 3, steps: 1000)
        let b = try Runs.run(seed: 42, nodes: 3, steps: 1000)
        #expect(a.invariants.committedLog == b.invariants.committedLog)
        #expect(a.now == b.now && a.steps == b.steps)
    }
}
