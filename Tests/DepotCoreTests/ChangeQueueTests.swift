import DepotCore
import Testing

/// `ChangeQueue`: sections of an actor that suspend inside still never
/// overlap, and one that throws leaves the queue to the next.
@Suite struct ChangeQueueTests {
    actor Ledger {
        let changes = ChangeQueue()
        var inside = 0
        var mostInside = 0
        var order: [Int] = []

        func section(_ id: Int) async {
            await changes.run {
                inside += 1
                mostInside = max(mostInside, inside)
                // Suspends (the actor is free for others), as a catalog call does.
                await Task.yield()
                try? await Task.sleep(for: .milliseconds(1))
                order.append(id)
                inside -= 1
            }
        }

        func failing() async throws {
            struct Refused: Error {}
            try await changes.run { () async throws(Refused) in
                await Task.yield()
                throw Refused()
            }
        }
    }

    @Test func sectionsNeverOverlapAndAThrowLeavesTheQueue() async {
        let ledger = Ledger()
        await withTaskGroup(of: Void.self) { group in
            for id in 0..<50 {
                group.addTask {
                    if id % 10 == 0 { _ = try? await ledger.failing() }
                    await ledger.section(id)
                }
            }
        }
        #expect(await ledger.mostInside == 1)
        #expect(await ledger.order.sorted() == Array(0..<50))
    }
}
