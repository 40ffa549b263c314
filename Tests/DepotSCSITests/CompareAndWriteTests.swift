import DepotSCSI
import Foundation
import Testing

/// COMPARE AND WRITE and WRITE ATOMIC on a logical unit over a real file.
@Suite struct CompareAndWriteTests {
    let lu: LogicalUnit
    let path: String

    init() throws {
        let volume = try TestVolume("caw")
        path = volume.path
        lu = try volume.unit()
    }

    func caw(lba: UInt8, expect: UInt8, write: UInt8) async -> SCSIResult {
        let data = [UInt8](repeating: expect, count: 512) + [UInt8](repeating: write, count: 512)
        return await lu.execute(cdb: [0x89, 0, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, 1, 0, 0], dataOut: data)
    }

    func block(_ lba: UInt8) async -> [UInt8] {
        await lu.execute(cdb: [0x28, 0, 0, 0, 0, lba, 0, 0, 1, 0], dataOut: []).dataInBytes
    }

    @Test func matchWritesAndMiscompareReportsTheOffset() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(await caw(lba: 3, expect: 0, write: 0x41).status == 0)
        #expect(await block(3) == [UInt8](repeating: 0x41, count: 512))
        // Medium 0x41 everywhere but byte 100: MISCOMPARE, INFORMATION = 100, nothing written.
        var data = [UInt8](repeating: 0x41, count: 1024)
        data[100] = 0x40
        for i in 512..<1024 { data[i] = 0x42 }
        let r = await lu.execute(cdb: [0x89, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0], dataOut: data)
        #expect(r.status == 0x02 && r.sense?.key == 0x0E && r.sense?.asc == 0x1D && r.sense?.information == 100)
        #expect(await block(3) == [UInt8](repeating: 0x41, count: 512))
        // Data-out not exactly twice the blocks: INVALID FIELD IN CDB.
        let wrong = await lu.execute(
            cdb: [0x89, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0], dataOut: [UInt8](repeating: 0, count: 512))
        #expect(wrong.sense?.asc == 0x24)
    }

    /// 64 concurrent test-and-set increments of one block: each CAW expects the
    /// value it read; with the write gate every success is a real increment,
    /// so successes equal the final count (no lost update).
    @Test func contendingCompareAndWritesNeverLoseAnUpdate() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let successes = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var won = 0
                    for _ in 0..<8 {
                        while true {
                            let current = await block(9)[0]
                            if await caw(lba: 9, expect: current, write: current &+ 1).status == 0 {
                                won += 1
                                break
                            }
                        }
                    }
                    return won
                }
            }
            return await group.reduce(0, +)
        }
        #expect(successes == 64)
        #expect(await block(9)[0] == 64)
    }

    @Test func writeAtomicWritesWithinItsLimit() async throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = await lu.execute(
            cdb: [0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0], dataOut: [UInt8](repeating: 0x5A, count: 1024))
        #expect(r.status == 0)
        #expect(await block(5) == [UInt8](repeating: 0x5A, count: 512))
        // Beyond MAXIMUM ATOMIC TRANSFER LENGTH (VPD B0h): INVALID FIELD IN CDB.
        let big = await lu.execute(cdb: [0x9C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0, 0], dataOut: [])
        #expect(big.sense?.asc == 0x24 || big.sense?.asc == 0x21)
    }
}

extension SCSIResult {
    var dataInBytes: [UInt8] { bulk.map { Array($0.readableBytesView) } ?? dataIn }
}
