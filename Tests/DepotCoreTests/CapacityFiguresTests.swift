@testable import DepotCore
import Testing

@Suite struct CapacityFiguresTests {
    func figures(
        capacity: UInt64 = 100 << 30, used: UInt64 = 0, provisioned: UInt64 = 0, fsAvail: UInt64 = .max,
        thresholds: CapacityThresholds = .defaults
    ) -> CapacityFigures {
        CapacityFigures(
            capacityBytes: capacity, usedBytes: used, provisionedBytes: provisioned,
            filesystemAvailableBytes: fsAvail, thresholds: thresholds)
    }

    @Test func derivedFigures() {
        let f = figures(capacity: 1000, used: 250, provisioned: 3000)
        #expect(f.freeBytes == 750)
        #expect(f.overcommitRatio == 3.0)
        #expect(f.usedPercent == 25.0)
        #expect(f.state == .ok)
        #expect(f.overprovisioned)
        #expect(!figures(capacity: 1000, provisioned: 1000).overprovisioned)
    }

    @Test func freeIsBoundedByTheFilesystem() {
        #expect(figures(capacity: 1000, used: 100, fsAvail: 300).freeBytes == 300)
        #expect(figures(capacity: 1000, used: 1200).freeBytes == 0)
    }

    @Test func statesFollowThresholds() {
        // vSphere defaults: warning at 75 %, critical at 85 %.
        #expect(figures(capacity: 100, used: 74).state == .ok)
        #expect(figures(capacity: 100, used: 75).state == .warning)
        #expect(figures(capacity: 100, used: 84).state == .warning)
        #expect(figures(capacity: 100, used: 85).state == .critical)
        let custom = CapacityThresholds(maxOvercommit: 20, warnPercent: 50, criticalPercent: 60, reservedPercent: 0)
        #expect(figures(capacity: 100, used: 55, thresholds: custom).state == .warning)
    }

    @Test func thickNeedsFreeLessReserve() throws {
        var t = CapacityThresholds.defaults
        t.reservedPercent = 10
        let f = figures(capacity: 1000, used: 500, thresholds: t)
        try f.admit(size: 400, provisioning: .thick, pool: "p")
        try f.admit(size: 400, provisioning: .eagerZeroed, pool: "p")
        do {
            try f.admit(size: 401, provisioning: .thick, pool: "p")
            Issue.record("admitted beyond free less reserve")
        } catch {
            #expect(error.code == .insufficientSpace)
            #expect(
                error.message.contains("500 bytes") && error.message.contains("100 bytes")
                    && error.message.contains("400 bytes"))
        }
    }

    @Test func thinIsBoundedByMaxOvercommit() throws {
        var t = CapacityThresholds.defaults
        t.maxOvercommit = 2.0
        let f = figures(capacity: 1000, used: 990, provisioned: 1500, thresholds: t)
        // Thin ignores free space: only the ratio counts.
        try f.admit(size: 500, provisioning: .thin, pool: "p")
        do {
            try f.admit(size: 501, provisioning: .thin, pool: "p")
            Issue.record("admitted beyond max overcommit")
        } catch {
            #expect(error.code == .insufficientSpace)
            #expect(
                error.message.contains("2.00x") && error.message.contains("1500 bytes")
                    && error.message.contains("1000 bytes"))
        }
    }

    @Test func thresholdValidation() {
        #expect(throws: DepotError.self) {
            try CapacityThresholds(maxOvercommit: 0.5, warnPercent: 75, criticalPercent: 85, reservedPercent: 0)
                .validate()
        }
        #expect(throws: DepotError.self) {
            try CapacityThresholds(maxOvercommit: 2, warnPercent: 90, criticalPercent: 85, reservedPercent: 0)
                .validate()
        }
        #expect(throws: DepotError.self) {
            try CapacityThresholds(maxOvercommit: 2, warnPercent: 75, criticalPercent: 185, reservedPercent: 0)
                .validate()
        }
        #expect(throws: DepotError.self) {
            try CapacityThresholds(maxOvercommit: .nan, warnPercent: 75, criticalPercent: 85, reservedPercent: 0)
                .validate()
        }
        #expect(throws: Never.self) { try CapacityThresholds.defaults.validate() }
    }

    @Test func errorsMapToHTTPStatuses() {
        #expect(DepotError.invalidArgument("x").httpStatus == 400)
        #expect(DepotError.unauthorized("x").httpStatus == 401)
        #expect(DepotError.notFound("x").httpStatus == 404)
        #expect(DepotError.conflict("x").httpStatus == 409)
        #expect(DepotError.unprocessable("x").httpStatus == 422)
        #expect(DepotError.insufficientSpace("x").httpStatus == 409)
    }

    /// Figures an API caller chooses (a 1-byte pool, an exabyte volume, a huge
    /// overcommit) end in a refusal, never in a trap.
    @Test func extremeFiguresAreRefusedNotTrapped() throws {
        let tiny = figures(capacity: 1, provisioned: 0)
        #expect(throws: DepotError.self) { try tiny.admit(size: UInt64(Int64.max), provisioning: .thin, pool: "p") }
        var loose = CapacityThresholds.defaults
        loose.maxOvercommit = 1e300
        let full = figures(capacity: 1, provisioned: UInt64.max - 10, thresholds: loose)
        #expect(throws: DepotError.self) { try full.admit(size: 1 << 40, provisioning: .thin, pool: "p") }
        #expect(CapacityFigures.ratio(1e20) == "1e+20")
        #expect(CapacityFigures.ratio(2.5) == "2.50")
    }
}
