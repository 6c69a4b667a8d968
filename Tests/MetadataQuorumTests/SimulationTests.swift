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

    /// The same seed gives the same run.
    @Test func deterministic() throws {
        let a = try Runs.run(seed: 42, nodes: 3, steps: 1000)
        let b = try Runs.run(seed: 42, nodes: 3, steps: 1000)
        #expect(a.invariants.committedLog == b.invariants.committedLog)
        #expect(a.now == b.now && a.steps == b.steps)
    }
}
