import Testing

@Suite struct Replay {
    /// Set PETREL_REPLAY_SEED (and PETREL_REPLAY_MAX_DOWN, PETREL_REPLAY_STEPS) to rerun one seed with a full trace.
    @Test func replaySeed() throws {
        guard let text = Environment.value("PETREL_REPLAY_SEED"), let seed = UInt64(text) else { return }
        var options = SimulationOptions()
        options.maxDown = Environment.value("PETREL_REPLAY_MAX_DOWN").flatMap { Int($0) } ?? 1
        var simulation = Simulation(seed: seed, options: options)
        simulation.tracing = true
        do {
            try simulation.run(steps: Environment.value("PETREL_REPLAY_STEPS").flatMap { Int($0) } ?? 1500)
            try simulation.checkLiveness()
            try simulation.invariants.checkFinal(simulation)
        } catch let failure as SimulationFailure {
            print(failure)
            throw failure
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
enum Environment {
    static func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
