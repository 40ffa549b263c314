@testable import DepotBackstores
import DepotBlock
@testable import DepotSCSI
import DepotInitiator
import Foundation
import Testing

/// Every entry of the dispatch table, without a transport: CDBs with each
/// field at zero and at its maximum, all bytes 0xFF and random, with
/// data-out of random and extreme lengths. Every answer is a status a
/// target may give with well-formed sense, data-in stays within MAXIMUM
/// TRANSFER LENGTH (or the CDB's allocation length), and nothing traps.
/// Through the real connection: HostileInputTests.
@Suite struct DispatchTablePropertyTests {
    static let statuses: Set<UInt8> = [0x00, 0x02, 0x08, 0x18, 0x28]

    static var operations: [HostileCDBs.Operation] {
        SCSIOperations.table.values.sorted { $0.opcode < $1.opcode }.flatMap { op in
            (SupportedOperationCodes.serviceActions(of: op.opcode).map { $0.map { Optional($0) } } ?? [nil]).map {
                HostileCDBs.Operation(opcode: op.opcode, serviceAction: $0, cdbLength: op.cdbLength)
            }
        }
    }

    func check(_ result: SCSIResult, _ what: String) {
        #expect(Self.statuses.contains(result.status), "\(what): status \(result.status)")
        if result.status == SCSIResult.checkCondition {
            let sense = result.senseBytes ?? []
            #expect(sense.count >= 8 && [0x70, 0x72].contains(sense[0] & 0x7F), "\(what): sense \(sense)")
        }
        let dataIn = result.bulk?.readableBytes ?? result.dataIn.count
        #expect(dataIn <= BlockIO.maxTransferBytes, "\(what): \(dataIn) bytes of data-in")
    }

    @Test(arguments: [512, 4096])
    func everyOperationAnswersEveryCDB(blockSize: Int) async throws {
        let path = NSTemporaryDirectory() + "depot-dispatch-\(UUID().uuidString).img"
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        // past MAXIMUM TRANSFER LENGTH, so whole-LU transfers are refused, not served
        try handle.truncate(atOffset: 40 << 20)
        try handle.close()
        // SANITIZE OVERWRITE of up to 31 passes is part of the table: unpaced here.
        Sanitize.bytesPerSecond.store(0, ordering: .relaxed)
        var rng = SeededRandom(seed: 0xD15_BA7C4 &+ UInt64(blockSize))
        let ops = Self.operations
        #expect(ops.count >= 40, "the table has \(ops.count) entries")
        var commands = 0
        // Data-out is a prefix of one random megabyte: making fresh bytes per command would be most of the run.
        let noise = rng.bytes((1 << 20) + 2 * blockSize + 3)
        for op in ops {
            // A fresh LU per opcode: MODE SELECT (SWP), SANITIZE and reservations leave state behind.
            let lu = LogicalUnit(
                device: try FileBlockDevice(path: path, blockSize: blockSize, readOnly: false, thin: true),
                uuid: UUID(), name: "p", readOnly: false)
            for cdb in HostileCDBs.variants(op, random: 8, using: &rng) {
                for length in [0, 1, blockSize, 2 * blockSize + 3, Int.random(in: 0...(1 << 20), using: &rng)] {
                    let result = await lu.execute(
                        cdb: cdb, dataOut: Array(noise.prefix(length)), nexus: ITNexus("n\(commands % 3)"))
                    check(result, "\(op) cdb \(cdb) data-out \(length)")
                    commands += 1
                }
                // The 16-byte CDB field is all a transport hands over; shorter CDBs are refused.
                let short = Array(cdb.prefix(max(1, op.cdbLength - 1)))
                if short.count < op.cdbLength { check(await lu.execute(cdb: short, dataOut: []), "\(op) short cdb") }
            }
            // Let a SANITIZE started with IMMED finish before the next LU takes the file.
            while lu.sanitizeActive { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(commands > 10_000)
    }
}
