@testable import DepotBackstores
import DepotBlock
import Dispatch
import Foundation
@testable import DepotSCSI
import NIOConcurrencyHelpers
import Testing

/// Group commit of flushes (`FlushGroup`), the way FileBlockDevice uses it.
@Suite struct FlushGroupTests {
    /// Group commit: 64 concurrent flushes share a few syncs, and each caller
    /// returns only after a sync that started after it asked has ended.
    @Test func concurrentFlushesShareSyncsThatStartAfterTheyAsk() async throws {
        let clock = Clock()
        let syncs = NIOLockedValueBox<[(start: Int, end: Int)]>([])
        // The first sync lasts until every caller has asked (at most 30 s), so
        // the callers overlap it however the machine schedules their tasks: on
        // a loaded 2-core machine they could otherwise run one after another.
        let asking = NIOLockedValueBox(0)
        let allAsked = DispatchSemaphore(value: 0)
        let first = NIOLockedValueBox(true)
        let group = FlushGroup(
            start: { work in DispatchQueue.global().async { work(true) } },
            sync: {
                let start = clock.tick()
                if first.withLockedValue({ f in
                    defer { f = false }
                    return f
                }) {
                    _ = allAsked.wait(timeout: .now() + 30)
                }
                usleep(5000)
                let end = clock.tick()
                syncs.withLockedValue { $0.append((start, end)) }
            })
        let waits = try await withThrowingTaskGroup(of: (asked: Int, returned: Int).self) { tasks in
            for _ in 0..<64 {
                tasks.addTask {
                    let asked = clock.tick()
                    if asking.withLockedValue({ n in
                        n += 1
                        return n
                    }) == 64 {
                        allAsked.signal()
                    }
                    try await group.flush()
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
        // Syncs never overlap (one thread at a time).
        let ordered = ran.sorted { $0.start < $1.start }
        for (a, b) in zip(ordered, ordered.dropFirst()) { #expect(a.end < b.start, "two syncs overlapped") }
    }

    /// A failed sync fails every caller it covered, through `request` too;
    /// a group whose threads are gone fails its callers instead of losing them.
    @Test func aFailedSyncFailsItsCallers() async throws {
        struct Failed: Error {}
        let failing = FlushGroup(
            start: { work in DispatchQueue.global().async { work(true) } }, sync: { throw Failed() })
        await #expect(throws: Failed.self) { try await failing.flush() }
        let reported = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            failing.request { c.resume(returning: $0 is Failed) }
        }
        #expect(reported)
        let shut = FlushGroup(start: { work in work(false) }, sync: {})
        await #expect(throws: BlockDeviceError.self) { try await shut.flush() }
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
