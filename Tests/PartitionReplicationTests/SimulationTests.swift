import PartitionReplication
import Testing

/// Randomized runs: faults for `steps` steps, then liveness once they stop. A failure names its
/// seed; `Runs.run(seed:steps:)` reruns exactly that one.
enum Runs {
    static func run(seed: UInt64, steps: Int, options: SimulationOptions = SimulationOptions()) throws -> Simulation {
        var simulation = Simulation(seed: seed, options: options)
        try simulation.run(steps: steps)
        try simulation.checkLiveness()
        try simulation.invariants.checkFinal(simulation)
        return simulation
    }

    static func sweep(seeds: Range<UInt64>, steps: Int) {
        for seed in seeds {
            do {
                _ = try run(seed: seed, steps: steps)
            } catch {
                Issue.record("\(error)")
                return
            }
        }
    }
}

@Suite struct SimulationTests {
    /// 2,000 seeds x 1,500 faulty steps, at most one of three brokers down at a time.
    @Test(arguments: 0..<8)
    func oneDownAtATime(chunk: Int) {
        let base = UInt64(chunk) * 250
        Runs.sweep(seeds: base..<base + 250, steps: 1500)
    }

    /// The same seed gives the same run.
    @Test func deterministic() throws {
        let a = try Runs.run(seed: 42, steps: 1500)
        let b = try Runs.run(seed: 42, steps: 1500)
        #expect(a.invariants.committed == b.invariants.committed)
        #expect(a.now == b.now && a.steps == b.steps && a.invariants.results == b.invariants.results)
        #expect(a.invariants.acked.count > 10, "too few acknowledged writes: \(a.invariants.results)")
    }
}
