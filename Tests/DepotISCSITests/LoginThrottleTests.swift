import Foundation
import Testing

@testable import DepotISCSI

@Suite struct LoginThrottleTests {
    let alice = "iqn.2026-12.test:alice"

    @Test func aPairIsLockedOutAfterItsFailuresAndOthersAreNot() {
        let throttle = LoginThrottle(limit: 5, window: 60, lockout: 60)
        let t0 = Date()
        for i in 0..<4 {
            #expect(!throttle.fail(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(Double(i))))
        }
        #expect(throttle.lockedFor(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(4)) == nil)
        #expect(throttle.fail(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(4)))
        #expect(throttle.lockedFor(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(5)) == 59)
        // Names compare case-insensitively (iSCSI names are); another address or name is free.
        #expect(
            throttle.lockedFor(initiator: alice.uppercased(), address: "192.0.2.1", now: t0.addingTimeInterval(5))
                != nil)
        #expect(throttle.lockedFor(initiator: alice, address: "192.0.2.2", now: t0.addingTimeInterval(5)) == nil)
        #expect(
            throttle.lockedFor(initiator: "iqn.2026-12.test:bob", address: "192.0.2.1", now: t0.addingTimeInterval(5))
                == nil)
        // The lockout ends; the count starts again from zero.
        #expect(throttle.lockedFor(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(64.5)) == nil)
        #expect(!throttle.fail(initiator: alice, address: "192.0.2.1", now: t0.addingTimeInterval(65)))
    }

    @Test func failuresOutsideTheWindowDoNotCountAndZeroTurnsItOff() {
        let throttle = LoginThrottle(limit: 3, window: 60, lockout: 60)
        let t0 = Date()
        #expect(!throttle.fail(initiator: alice, address: "::1", now: t0))
        #expect(!throttle.fail(initiator: alice, address: "::1", now: t0.addingTimeInterval(30)))
        #expect(!throttle.fail(initiator: alice, address: "::1", now: t0.addingTimeInterval(61)))
        #expect(throttle.lockedFor(initiator: alice, address: "::1", now: t0.addingTimeInterval(62)) == nil)
        let off = LoginThrottle(limit: 0)
        for _ in 0..<100 { #expect(!off.fail(initiator: alice, address: "::1")) }
        #expect(off.lockedFor(initiator: alice, address: "::1") == nil)
    }
}
