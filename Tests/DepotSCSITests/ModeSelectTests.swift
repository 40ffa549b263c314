import DepotSCSI
import Foundation
import Testing

/// MODE SELECT and descriptor-format sense on a logical unit over a real
/// volume file (no transport).
@Suite struct ModeSelectTests {
    let lu: LogicalUnit
    let path: String

    init() throws {
        let volume = try TestVolume("scsi")
        path = volume.path
        lu = try volume.unit()
    }

    /// MODE SENSE(10) of one page: (page bytes, whole answer).
    func page(_ code: UInt8, control pc: UInt8 = 0) async -> [UInt8] {
        let r = await lu.execute(cdb: [0x5A, 0x08, pc << 6 | code, 0, 0, 0, 0, 0x01, 0x00, 0], dataOut: [])
        #expect(r.status == 0)
        return Array(r.dataIn.dropFirst(8))
    }

    /// MODE SELECT(10) with PF=1 of one page.
    func select(_ page: [UInt8], cdbByte1: UInt8 = 0x10) async -> SCSIResult {
        let list = [UInt8](repeating: 0, count: 8) + page
        return await lu.execute(cdb: [0x55, cdbByte1, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], dataOut: list)
    }

    @Test func dSenseSwitchesSenseToDescriptorFormat() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Out of range READ(10): fixed format by default.
        let outOfRange: [UInt8] = [0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0]
        var r = await lu.execute(cdb: outOfRange, dataOut: [])
        #expect(r.senseBytes?.first == 0x70)
        // D_SENSE is changeable and starts cleared.
        #expect(await page(0x0A, control: 1)[2] & 0x04 != 0)
        var control = await page(0x0A)
        #expect(control[2] & 0x04 == 0)
        control[2] |= 0x04
        r = await select(control)
        #expect(r.status == 0, "\(String(describing: r.sense))")
        #expect(await page(0x0A)[2] & 0x04 != 0)
        // Now descriptor format (SPC-4 §4.5.2): 72h, key, ASC, ASCQ.
        r = await lu.execute(cdb: outOfRange, dataOut: [])
        let sense = try #require(r.senseBytes)
        #expect(Array(sense[0..<4]) == [0x72, 0x05, 0x21, 0x00], "\(sense)")
        // A bad CDB field carries a sense-key specific descriptor (02h) with the field pointer.
        r = await lu.execute(cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x01], dataOut: [])
        let bad = try #require(r.senseBytes)
        #expect(bad[0] == 0x72 && bad[2] == 0x24)
        #expect(Array(bad[8..<10]) == [0x02, 0x06] && bad[12] & 0xC0 == 0xC0 && bad[14] == 9, "\(bad)")
        // Defaults (PC=2) still say fixed format.
        #expect(await page(0x0A, control: 2)[2] & 0x04 == 0)
    }

    @Test func writeCacheCanBeTurnedOff() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        var caching = await page(0x08)
        #expect(caching[2] & 0x04 != 0, "WCE set by default")
        caching[2] &= ~0x04
        #expect(await select(caching).status == 0)
        #expect(await page(0x08)[2] & 0x04 == 0)
        // Writes still work, now write-through.
        let write = await lu.execute(
            cdb: [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataOut: [UInt8](repeating: 7, count: 512))
        #expect(write.status == 0)
    }

    @Test func badParameterListsChangeNothing() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        var control = await page(0x0A)
        // QUEUE ALGORITHM MODIFIER is not changeable: INVALID FIELD IN PARAMETER LIST at that byte.
        control[3] = 0x00
        control[2] |= 0x04
        var r = await select(control)
        #expect(r.sense?.asc == 0x26 && r.sense?.fieldPointer == 8 + 3, "\(String(describing: r.sense))")
        #expect(r.senseBytes.map { $0[15] & 0x40 } == 0, "C/D=0: the pointer is into the parameter list")
        #expect(await page(0x0A)[2] & 0x04 == 0, "D_SENSE unchanged")
        // SP=1 (save) is refused; PF=0 is refused.
        r = await select(await page(0x0A), cdbByte1: 0x11)
        #expect(r.sense?.asc == 0x24 && r.sense?.fieldPointer == 1)
        r = await select(await page(0x0A), cdbByte1: 0x00)
        #expect(r.sense?.asc == 0x24 && r.sense?.fieldPointer == 1)
        // An unknown page and a wrong page length.
        r = await select([0x19, 0x06, 0, 0, 0, 0, 0, 0])
        #expect(r.sense?.asc == 0x26)
        r = await select([0x0A, 0x06, 0, 0, 0, 0, 0, 0])
        #expect(r.sense?.asc == 0x26)
        // A parameter list shorter than the header.
        r = await lu.execute(cdb: [0x55, 0x10, 0, 0, 0, 0, 0, 0, 4, 0], dataOut: [0, 0, 0, 0])
        #expect(r.sense?.asc == 0x1A)
        // MODE SELECT is in REPORT SUPPORTED OPERATION CODES (generated from the dispatch table).
        r = await lu.execute(cdb: [0xA3, 0x0C, 0x01, 0x55, 0, 0, 0, 0, 0x01, 0, 0, 0], dataOut: [])
        #expect(r.status == 0 && r.dataIn.count > 1 && r.dataIn[1] & 0x07 == 0x03, "\(r.dataIn)")
    }
}
