import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Waiting for a child process without trusting Foundation alone: with many tests spawning
/// processes in one runner, Foundation's Process sometimes never reaps a child (it stays a
/// zombie and `isRunning` stays true), so `waitUntilExit()` would hang. This reaps it too.
enum ProcessWait {
    /// The exit status (128 + signal for a signal), or nil if it is still running after `timeout`.
    static func wait(_ p: Process, timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        let pid = p.processIdentifier
        while true {
            if !p.isRunning { return p.terminationStatus }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if Date() > deadline { return nil }
            usleep(20_000)
        }
    }

    /// Kills the process and waits (bounded) for it to go.
    static func kill(_ p: Process, signal: Int32 = SIGKILL) {
        Glibc.kill(p.processIdentifier, signal)
        _ = wait(p, timeout: 10)
    }
}
