@testable import DepotISCSI
import Testing

/// The per-connection budget for command buffers: what is taken never goes
/// past the limit, waiters go in order, and a command larger than the
/// whole budget still runs (alone).
@Suite struct BufferBudgetTests {
    @Test func takersBeyondTheLimitWaitAndGoInOrder() async {
        let budget = BufferBudget(limit: 100)
        #expect(await budget.take(60) == 60)
        #expect(await budget.take(40) == 40)
        #expect(budget.inUse == 100)
        let order = Order()
        let first = Task {
            let n = await budget.take(50)
            await order.add(1)
            return n
        }
        try? await Task.sleep(for: .milliseconds(50))
        let second = Task {
            let n = await budget.take(10)
            await order.add(2)
            return n
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(await order.seen.isEmpty, "nobody got in over the limit")
        budget.give(40)
        // 50 does not fit beside 60 yet, and 10 waits behind it (first come, first served).
        try? await Task.sleep(for: .milliseconds(50))
        #expect(await order.seen.isEmpty)
        budget.give(60)
        #expect(await first.value == 50)
        #expect(await second.value == 10)
        #expect(await order.seen == [1, 2])
        #expect(budget.inUse == 60)
        budget.give(50)
        budget.give(10)
        #expect(budget.inUse == 0)
    }

    @Test func aCommandLargerThanTheBudgetIsChargedTheWholeBudget() async {
        let budget = BufferBudget(limit: 100)
        #expect(await budget.take(1 << 40) == 100)
        budget.give(100)
        #expect(await budget.take(-5) == 0)
        #expect(budget.inUse == 0)
    }

    actor Order {
        var seen: [Int] = []
        func add(_ k: Int) { seen.append(k) }
    }
}
