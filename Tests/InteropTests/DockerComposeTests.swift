import Foundation
import Testing

/// The docker/ checks, run by `swift test`: `python3 -m pytest -q docker/tests`, that is
/// - test_compose.py: `docker-compose config` accepts docker/docker-compose.yml; images pinned,
///   interpolated variables in .env.example, no passwords in the file, scalable services,
///   ports, healthchecks and start order, Petrel node keys (no Docker engine needed);
/// - test_provision.py: docker/metabase/provision.py against a stub of the Metabase API
///   (calls made, a second run changes nothing);
/// - test_healthcheck.py: the image's bash-only health probe;
/// - test_clickhouse_sql.py: the ClickHouse schema and the Metabase cards' SQL on a real
///   ClickHouse 18.16 started on loopback.
///
/// Needs python3 with pytest; the individual tests need docker-compose and clickhouse-server
/// (`scripts/test` installs all of them). Missing tools make tests skip with the reason, unless
/// `PETREL_CI=1`, where they fail instead (the pytest files apply the same rule).
@Suite("docker/ compose, provisioning and ClickHouse SQL checks")
struct DockerComposeTests {
    @Test("python3 -m pytest docker/tests passes",
          .enabled(if: InteropEnvironment.available(InteropEnvironment.pytestMissing)),
          .timeLimit(.minutes(10)))
    func dockerChecks() throws {
        try InteropEnvironment.requirePresent(InteropEnvironment.pytestMissing)
        let run = try InteropEnvironment.run(
            ["python3", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "docker/tests"],
            timeout: 540)
        InteropEnvironment.check(run, name: "docker-tests")
    }
}

extension InteropEnvironment {
    /// Why python3 with pytest is unusable, or nil.
    static let pytestMissing: String? = {
        if let python = pythonMissing { return python }
        let probe = try? run(["python3", "-c", "import pytest"], timeout: 60)
        guard let probe, probe.status == 0 else { return "the Python package pytest (pip install pytest)" }
        return nil
    }()
}
