import DepotSCSI
import Foundation
import Testing

/// EXTENDED COPY(LID4) and RECEIVE COPY STATUS(LID4) on one LU (the LU is
/// its own copy target; across LUs and targets: EnterpriseSCSITests).
@Suite struct ExtendedCopyTests {
    static func be(_ v: UInt64, _ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(n - 1 - $0))) }
    }

    /// A LID4 parameter list (SPC-4 table 126) copying `blocks` from `from` to `to`.
    static func lid4(naa: [UInt8], listID: UInt32, blocks: UInt16, from: UInt64, to: UInt64, flags: UInt8 = 0)
        -> [UInt8]
    {
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x01
        header[3] = 0x20
        header[15] = flags
        header[16] = 0xFF
        header.replaceSubrange(20..<24, with: be(UInt64(listID), 4))
        header[43] = 32
        header[45] = 28
        var target = [UInt8](repeating: 0, count: 32)
        target[0] = 0xE4
        target[4] = 0x01
        target[5] = 0x03
        target[7] = UInt8(naa.count)
        target.replaceSubrange(8..<(8 + naa.count), with: naa)
        target[30] = 0x02
        let segment: [UInt8] = [0x02, 0, 0, 0x18, 0, 0, 0, 0, 0, 0] + be(UInt64(blocks), 2) + be(from, 8) + be(to, 8)
        return header + target + segment
    }

    @Test func lid4CopiesAndReportsItsStatus() async throws {
        let volume = try TestVolume("xcopy")
        defer { volume.remove() }
        let lu = try volume.unit()
        let data = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(await lu.execute(cdb: [0x2A, 0, 0, 0, 0, 0, 0, 0, 8, 0], dataOut: data).status == 0)
        let list = Self.lid4(naa: lu.naaDesignator, listID: 0x0102_0304, blocks: 8, from: 0, to: 100)
        let cdb: [UInt8] = [0x83, 0x01, 0, 0, 0, 0, 0, 0, 0, 0] + Self.be(UInt64(list.count), 4) + [0, 0]
        let copy = await lu.execute(cdb: cdb, dataOut: list)
        #expect(copy.status == 0, "\(String(describing: copy.sense))")
        let read = await lu.execute(cdb: [0x28, 0, 0, 0, 0, 100, 0, 0, 8, 0], dataOut: [])
        #expect(read.bulk.map { Array($0.readableBytesView) } == data)
        // RECEIVE COPY STATUS(LID4): EXTENDED COPY(LID4), completed, 4096 bytes, one segment; read once.
        let statusCDB: [UInt8] = [0x84, 0x05, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0]
        let status = await lu.execute(cdb: statusCDB, dataOut: [])
        #expect(status.status == 0 && status.dataIn.count >= 32)
        #expect(
            status.dataIn[4] == 0x01 && status.dataIn[5] == 0x01 && status.dataIn[23] == 0x00
                && status.dataIn[22] == 0x10 && status.dataIn[25] == 1)
        #expect(await lu.execute(cdb: statusCDB, dataOut: []).sense?.asc == 0x24, "a status is reported once")
        // IMMED (background copy) is not offered: INVALID FIELD IN PARAMETER LIST, nothing recorded.
        let immediate = Self.lid4(naa: lu.naaDesignator, listID: 9, blocks: 8, from: 0, to: 200, flags: 0x01)
        let refused = await lu.execute(
            cdb: [0x83, 0x01, 0, 0, 0, 0, 0, 0, 0, 0] + Self.be(UInt64(immediate.count), 4) + [0, 0], dataOut: immediate
        )
        #expect(refused.sense?.asc == 0x26)
        // A header that is not format 01h is refused the same way.
        var bad = list
        bad[0] = 0x02
        #expect(await lu.execute(cdb: cdb, dataOut: bad).sense?.asc == 0x26)
    }
}
