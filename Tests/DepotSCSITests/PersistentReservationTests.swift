import DepotSCSI
import Foundation
import NIOConcurrencyHelpers
import Testing

/// PERSISTENT RESERVE IN/OUT (SPC-4 §5.12) on a logical unit over a real
/// volume file, from several I_T nexuses (no transport).
@Suite struct PersistentReservationTests {
    static let a: ITNexus = "iqn.2026-11.test:a,i,0x230000000001|iqn.2026-11.dev.depot:t"
    static let b: ITNexus = "iqn.2026-11.test:b,i,0x230000000002|iqn.2026-11.dev.depot:t"
    static let c: ITNexus = "iqn.2026-11.test:c,i,0x230000000003|iqn.2026-11.dev.depot:t"
    let path: String
    let saved = NIOLockedValueBox<[PRState?]>([])

    init() throws {
        path = try TestVolume("pr").path
    }

    func unit(restoring state: PRState? = nil) throws -> LogicalUnit {
        let saved = self.saved
        return try TestVolume(path: path).unit(
            persistentReservations: PersistentReservations(restoring: state) { state in
                saved.withLockedValue { $0.append(state) }
            })
    }

    static func key(_ k: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: k >> (56 - 8 * $0)) } }

    /// PERSISTENT RESERVE OUT with the basic 24-byte parameter list (plus `extra`).
    func out(
        _ lu: LogicalUnit, _ nexus: ITNexus, action: UInt8, type: UInt8 = 0, key: UInt64 = 0, sark: UInt64 = 0,
        flags: UInt8 = 0, extra: [UInt8] = []
    ) async -> SCSIResult {
        var list = Self.key(key) + Self.key(sark) + [0, 0, 0, 0, flags, 0, 0, 0] + extra
        if !extra.isEmpty { list.replaceSubrange(24..<24, with: [0, 0, 0, UInt8(extra.count)]) }
        let n = UInt32(list.count)
        return await lu.execute(
            cdb: [
                0x5F, action, type, 0, 0, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF),
                0,
            ], dataOut: list, nexus: nexus)
    }

    func readIn(_ lu: LogicalUnit, _ action: UInt8) async -> [UInt8] {
        let r = await lu.execute(cdb: [0x5E, action, 0, 0, 0, 0, 0, 0x10, 0, 0], dataOut: [], nexus: Self.a)
        #expect(r.status == 0)
        return r.dataIn
    }

    func write(_ lu: LogicalUnit, _ nexus: ITNexus) async -> UInt8 {
        await lu.execute(
            cdb: [0x2A, 0, 0, 0, 0, 1, 0, 0, 1, 0], dataOut: [UInt8](repeating: 7, count: 512), nexus: nexus
        ).status
    }

    func read(_ lu: LogicalUnit, _ nexus: ITNexus) async -> UInt8 {
        await lu.execute(cdb: [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], dataOut: [], nexus: nexus).status
    }

    @Test func writeExclusiveFencesWritesOfOthersAndReleaseLiftsIt() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lu = try unit()
        #expect(await out(lu, Self.a, action: 0, sark: 0xA).status == 0)
        #expect(await out(lu, Self.b, action: 0, sark: 0xB).status == 0)
        // A wrong key from a registered nexus conflicts and changes nothing.
        #expect(await out(lu, Self.b, action: 0, key: 0xBAD, sark: 0xC).status == 0x18)
        #expect(await out(lu, Self.a, action: 1, type: 0x01, key: 0xA).status == 0)
        #expect(await write(lu, Self.a) == 0)
        #expect(await write(lu, Self.b) == 0x18)
        #expect(await read(lu, Self.b) == 0)
        #expect(await write(lu, Self.c) == 0x18)
        // READ RESERVATION: holder's key and type; READ KEYS: both keys, generation 2.
        let reservation = await readIn(lu, 0x01)
        #expect(Array(reservation[8..<16]) == Self.key(0xA) && reservation[21] == 0x01)
        let keys = await readIn(lu, 0x00)
        #expect(
            keys[3] == 2 && keys[7] == 16 && Array(keys[8..<16]) == Self.key(0xA)
                && Array(keys[16..<24]) == Self.key(0xB))
        // Releasing with another type is INVALID RELEASE OF PERSISTENT RESERVATION.
        let wrongType = await out(lu, Self.a, action: 2, type: 0x03, key: 0xA)
        #expect(wrongType.sense?.asc == 0x26 && wrongType.sense?.ascq == 0x04)
        #expect(await out(lu, Self.a, action: 2, type: 0x01, key: 0xA).status == 0)
        #expect(await write(lu, Self.b) == 0)
        // Nothing had APTPL: nothing was stored.
        #expect(saved.withLockedValue { $0.isEmpty })
    }

    @Test func exclusiveAccessRegistrantsOnlyAdmitsRegistrantsAndPreemptFencesThem() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lu = try unit()
        var cursor = lu.eventCursor
        _ = await out(lu, Self.a, action: 6, sark: 0xA)
        _ = await out(lu, Self.b, action: 6, sark: 0xB)
        #expect(await out(lu, Self.a, action: 1, type: 0x06, key: 0xA).status == 0)
        #expect(await read(lu, Self.b) == 0)
        #expect(await write(lu, Self.b) == 0)
        #expect(await read(lu, Self.c) == 0x18)
        // B preempts A: A's registration goes, B holds the reservation, A is told.
        #expect(await out(lu, Self.b, action: 4, type: 0x06, key: 0xB, sark: 0xA).status == 0)
        #expect(await read(lu, Self.a) == 0x18)
        let (next, senses) = lu.events(after: cursor, for: Self.a)
        #expect(senses.map { [$0.asc, $0.ascq] } == [[0x2A, 0x05]])
        #expect(lu.events(after: cursor, for: Self.c).senses.isEmpty)
        cursor = next
        let reservation = await readIn(lu, 0x01)
        #expect(Array(reservation[8..<16]) == Self.key(0xB))
        // CLEAR by the holder: everything goes.
        #expect(await out(lu, Self.b, action: 3, key: 0xB).status == 0)
        #expect(await readIn(lu, 0x00)[7] == 0)
        #expect(await write(lu, Self.c) == 0)
    }

    @Test func allRegistrantsReservationOutlivesItsReserver() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lu = try unit()
        _ = await out(lu, Self.a, action: 6, sark: 0xA)
        _ = await out(lu, Self.b, action: 6, sark: 0xB)
        #expect(await out(lu, Self.a, action: 1, type: 0x08, key: 0xA).status == 0)
        #expect(await out(lu, Self.a, action: 0, key: 0xA, sark: 0).status == 0)
        // Still reserved (B is a registrant), key reported as 0 for all-registrants types.
        let reservation = await readIn(lu, 0x01)
        #expect(reservation[7] == 16 && reservation[21] == 0x08 && Array(reservation[8..<16]) == Self.key(0))
        #expect(await write(lu, Self.a) == 0x18)
        #expect(await out(lu, Self.b, action: 0, key: 0xB, sark: 0).status == 0)
        #expect(await readIn(lu, 0x01)[7] == 0)
    }

    @Test func specifiedPortsRegisterMovesAndAPTPLIsStoredAndRestored() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lu = try unit()
        // SPEC_I_PT with an iSCSI TransportID (format 01b) registers C's port too.
        var id = Array("iqn.2026-11.test:c,i,0x230000000003".utf8) + [0]
        id += [UInt8](repeating: 0, count: (4 - id.count % 4) % 4)
        let transportID = [0x45, 0, 0, UInt8(id.count)] + id
        #expect(await out(lu, Self.a, action: 0, sark: 0xA, flags: 0x08 | 0x01, extra: transportID).status == 0)
        #expect(await readIn(lu, 0x00)[7] == 16)
        #expect(await out(lu, Self.a, action: 1, type: 0x03, key: 0xA).status == 0)
        // REGISTER AND MOVE to B's port, unregistering A.
        var move = Self.key(0xA) + Self.key(0xB) + [0, 0x02 | 0x01, 0, 1]
        var bid = Array("iqn.2026-11.test:b,i,0x230000000002".utf8) + [0]
        bid += [UInt8](repeating: 0, count: (4 - bid.count % 4) % 4)
        let bTransport = [0x45, 0, 0, UInt8(bid.count)] + bid
        move += [0, 0, 0, UInt8(bTransport.count)] + bTransport
        let n = UInt8(move.count)
        #expect(
            await lu.execute(cdb: [0x5F, 0x07, 0x03, 0, 0, 0, 0, 0, n, 0], dataOut: move, nexus: Self.a).status == 0)
        #expect(await write(lu, Self.b) == 0)
        #expect(await write(lu, Self.a) == 0x18)
        // READ FULL STATUS: C (key A) and B (holder, key B, type 3) with their TransportIDs.
        let full = await readIn(lu, 0x03)
        let text = String(decoding: full, as: UTF8.self)
        #expect(
            text.contains("iqn.2026-11.test:b,i,0x230000000002") && text.contains("iqn.2026-11.test:c,i,0x230000000003")
        )
        // Every change with APTPL set was stored; the last one restores into a new LU.
        let last = try #require(saved.withLockedValue { $0.last ?? nil })
        #expect(last.aptpl && last.reservation?.type == .exclusiveAccess)
        let restored = try unit(restoring: last)
        #expect(await write(restored, Self.b) == 0)
        #expect(await write(restored, Self.c) == 0x18)
        // REPORT CAPABILITIES shows PTPL_A and all six types.
        let caps = await readIn(restored, 0x02)
        #expect(caps[3] & 0x01 == 0x01 && caps[4] == 0xEA && caps[5] == 0x01)
    }

    @Test func badParameterListsAreRefused() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lu = try unit()
        // 23 bytes: PARAMETER LIST LENGTH ERROR.
        let short = await lu.execute(
            cdb: [0x5F, 0, 0, 0, 0, 0, 0, 0, 23, 0], dataOut: [UInt8](repeating: 0, count: 23), nexus: Self.a)
        #expect(short.sense?.asc == 0x1A)
        _ = await out(lu, Self.a, action: 0, sark: 0xA)
        // Scope other than LU_SCOPE, unknown type: INVALID FIELD IN CDB.
        var r = await lu.execute(
            cdb: [0x5F, 1, 0x11, 0, 0, 0, 0, 0, 24, 0], dataOut: Self.key(0xA) + [UInt8](repeating: 0, count: 16),
            nexus: Self.a)
        #expect(r.sense?.asc == 0x24)
        r = await out(lu, Self.a, action: 1, type: 0x02, key: 0xA)
        #expect(r.sense?.asc == 0x24)
        // SPEC_I_PT on a registered nexus: INVALID FIELD IN PARAMETER LIST.
        r = await out(
            lu, Self.a, action: 0, key: 0xA, sark: 0xA, flags: 0x08,
            extra: [0x05, 0, 0, 20] + [UInt8](repeating: 0x61, count: 19) + [0])
        #expect(r.sense?.asc == 0x26)
        // SPC-2 RESERVE while another nexus holds a persistent reservation conflicts.
        _ = await out(lu, Self.a, action: 1, type: 0x01, key: 0xA)
        #expect(await lu.execute(cdb: [0x16, 0, 0, 0, 0, 0], dataOut: [], nexus: Self.b).status == 0x18)
    }
}
