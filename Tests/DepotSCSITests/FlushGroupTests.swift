@testable import DepotBackstores
import DepotBlock
@testable import DepotSCSI
import NIOConcurrencyHelpers
import Testing

/// Group commit of flushes (`FlushGroup`), the way FileBlockDevice uses it.
@Suite struct FlushGroupTests {
    /// Group commit: 64 concurrent flushes share a few syncs, and each caller
    /// returns only after a sync that started after it asked has ended.
    @Test func concurrentFlushesShareSyncsThatStartAfterTheyAsk() async throws {
        let group = FlushGroup()
        let clock = Clock()
        let syncs = NIOLockedValueBox<[(start: Int, end: Int)]>([])
        let waits = try await withThrowingTaskGroup(of: (asked: Int, returned: Int).self) { tasks in
            for _ in 0..<64 {
                tasks.addTask {
                    let asked = clock.tick()
                    try await group.flush {
                        let start = clock.tick()
                        try await Task.sleep(for: .milliseconds(5))
                        let end = clock.tick()
                        syncs.withLockedValue { $0.append((start, end)) }
                    }
                    return (asked, clock.tick())
                }
            }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        let ran = syncs.withLockedValue { $0 }
        #expect(ran.count < 64, "no flush was shared: \(ran.count) syncs")
        for wait in waits {
            #expect(
                ran.contains { $0.start > wait.asked && $0.end < wait.returned },
                "a caller returned without a sync that started after it asked")
        }
        // A failed sync fails every caller it covered.
        struct Failed: Error {}
        await #expect(throws: Failed.self) { try await group.flush { throw Failed() } }
    }
}

/// A counter that orders events across tasks.
final class Clock: Sendable {
    private let now = NIOLockedValueBox(0)
    func tick() -> Int {
        now.withLockedValue {
            $0 += 1
            return $0
        }
    }
}
