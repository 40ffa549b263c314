@testable import DepotBackstores
import DepotBlock
@testable import DepotSCSI
import Foundation
import Testing

/// What the fast lane may take (`plainTransfer`) and what it must leave to
/// the general path, on a logical unit over a real volume file.
@Suite struct FastLaneTests {
    let lu: LogicalUnit
    let volume: TestVolume

    init() throws {
        volume = try TestVolume("fast")
        lu = try volume.unit()
    }

    func transfer(_ cdb: [UInt8]) -> LogicalUnit.PlainTransfer? {
        (cdb + [UInt8](repeating: 0, count: 16 - cdb.count)).withUnsafeBytes { lu.plainTransfer($0) }
    }

    static let read10: [UInt8] = [0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0]
    static let write16: [UInt8] = [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0]

    @Test func plainReadsAndWritesQualifyWithTheirByteRange() throws {
        defer { volume.remove() }
        let read = try #require(transfer(Self.read10))
        #expect(!read.isWrite && read.offset == 8 * 512 && read.length == 8 * 512)
        let write = try #require(transfer(Self.write16))
        #expect(write.isWrite && write.offset == 16 * 512 && write.length == 8 * 512)
        // The last block of the 1 MiB volume qualifies; one past it does not (LBA OUT OF RANGE is the general path's).
        #expect(transfer([0x28, 0, 0, 0, 0x07, 0xFF, 0, 0, 1, 0]) != nil)
        #expect(transfer([0x28, 0, 0, 0, 0x07, 0xFF, 0, 0, 2, 0]) == nil)
        #expect(
            transfer([0x88, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0]) == nil, "LBA overflow"
        )
    }

    @Test func unusualCDBsAreLeftToTheGeneralPath() {
        defer { volume.remove() }
        #expect(transfer([0x28, 0, 0, 0, 0, 8, 0, 0, 0, 0]) == nil, "zero blocks")
        #expect(transfer([0x28, 0x20, 0, 0, 0, 8, 0, 0, 8, 0]) == nil, "RDPROTECT")
        #expect(transfer([0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0x04]) == nil, "NACA")
        #expect(
            transfer([0x2A, 0x08, 0, 0, 0, 8, 0, 0, 8, 0])?.durable == true,
            "a FUA write qualifies, to be answered after a flush")
        #expect(transfer([0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0])?.durable == false)
        #expect(transfer([0x28, 0x08, 0, 0, 0, 8, 0, 0, 8, 0]) != nil, "FUA read is served from a coherent cache")
        #expect(transfer([0x2F, 0, 0, 0, 0, 8, 0, 0, 8, 0]) == nil, "VERIFY")
        #expect(transfer([0xA8, 0, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0]) == nil, "READ(12)")
    }

    func sync(_ cdb: [UInt8]) -> Bool {
        (cdb + [UInt8](repeating: 0, count: 16 - cdb.count)).withUnsafeBytes { lu.plainSync($0) }
    }

    /// SYNCHRONIZE CACHE (10) and (16) qualify to be answered after a flush,
    /// unless IMMED, a range past the medium, NACA, or a reservation says otherwise.
    @Test func synchronizeCacheQualifiesUnlessItsFieldsOrAReservationSayOtherwise() async throws {
        defer { volume.remove() }
        #expect(sync([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "the whole medium (0 blocks from LBA 0)")
        #expect(sync([0x35, 0, 0, 0, 0x07, 0xFF, 0, 0, 1, 0]), "the last block")
        #expect(sync([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0]))
        #expect(!sync([0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]), "IMMED")
        #expect(!sync([0x35, 0, 0, 0, 0x07, 0xFF, 0, 0, 2, 0]), "past the last block")
        #expect(!sync([0x91, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, 0, 0]), "LBA overflow")
        #expect(!sync([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0x04]), "NACA")
        #expect(!sync([0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0]), "a WRITE is not a SYNCHRONIZE CACHE")
        #expect(await lu.execute(cdb: [0x16, 0, 0, 0, 0, 0], dataOut: [], nexus: "a").status == 0)
        #expect(!sync([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "an SPC-2 reservation")
        #expect(await lu.execute(cdb: [0x17, 0, 0, 0, 0, 0], dataOut: [], nexus: "a").status == 0)
        #expect(sync([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    }

    @Test func reservationsAndWriteThroughDecline() async throws {
        defer { volume.remove() }
        // SPC-2 RESERVE by one nexus: even its own commands take the general path.
        #expect(await lu.execute(cdb: [0x16, 0, 0, 0, 0, 0], dataOut: [], nexus: "a").status == 0)
        #expect(transfer(Self.read10) == nil)
        #expect(await lu.execute(cdb: [0x17, 0, 0, 0, 0, 0], dataOut: [], nexus: "a").status == 0)
        #expect(transfer(Self.read10) != nil)
        // A persistent reservation in force (REGISTER, then RESERVE Write Exclusive).
        var key = [UInt8](repeating: 0, count: 24)
        key[15] = 7
        #expect(await lu.execute(cdb: [0x5F, 0x00, 0, 0, 0, 0, 0, 0, 24, 0], dataOut: key, nexus: "a").status == 0)
        var reserve = [UInt8](repeating: 0, count: 24)
        reserve[7] = 7
        #expect(
            await lu.execute(cdb: [0x5F, 0x01, 0x01, 0, 0, 0, 0, 0, 24, 0], dataOut: reserve, nexus: "a").status == 0)
        #expect(transfer(Self.read10) == nil)
        #expect(
            await lu.execute(cdb: [0x5F, 0x02, 0x01, 0, 0, 0, 0, 0, 24, 0], dataOut: reserve, nexus: "a").status == 0)
        #expect(transfer(Self.write16) != nil)
        // WCE cleared by MODE SELECT: every write is durable; reads are unaffected.
        let caching = Array(
            await lu.execute(cdb: [0x5A, 0x08, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0], dataOut: []).dataIn.dropFirst(8))
        var page = caching
        page[2] &= ~0x04
        let list = [UInt8](repeating: 0, count: 8) + page
        #expect(await lu.execute(cdb: [0x55, 0x10, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], dataOut: list).status == 0)
        #expect(transfer(Self.write16)?.durable == true)
        #expect(transfer(Self.read10)?.durable == false)
    }

    @Test func writesAreRefusedOnAReadOnlyUnit() throws {
        defer { volume.remove() }
        let readOnly = LogicalUnit(
            device: try FileBlockDevice(path: volume.path, blockSize: 512, readOnly: true), uuid: UUID(), name: "ro",
            readOnly: true)
        let cdb = Self.write16.withUnsafeBytes { readOnly.plainTransfer($0) }
        #expect(cdb == nil)
    }

    /// What `writeNow` wrote, `readNow` and the general READ return; an
    /// atomic operation holding the write gate makes `writeNow` decline.
    @Test func writeNowAndReadNowMoveTheBytes() async throws {
        defer { volume.remove() }
        let write = try #require(transfer(Self.write16))
        let data = (0..<write.length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(data.withUnsafeBytes { lu.writeNow(write, from: $0) })
        let read = try #require(transfer([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0]))
        var back = [UInt8](repeating: 0, count: read.length)
        #expect(back.withUnsafeMutableBytes { lu.readNow(read, into: $0) })
        #expect(back == data)
        #expect(await lu.execute(cdb: [0x28, 0, 0, 0, 0, 16, 0, 0, 8, 0], dataOut: []).dataInBytes == data)
    }

    @Test func inlineWriteLimitSendsLargerWritesToThePool() throws {
        defer { volume.remove() }
        let device = try FileBlockDevice(path: volume.path, blockSize: 512, readOnly: false)
        let small = [UInt8](repeating: 1, count: 4096)
        let large = [UInt8](repeating: 2, count: InlineWrites.limit.load(ordering: .relaxed) + 512)
        #expect(small.withUnsafeBytes { device.writeNow(offset: 0, from: $0) })
        if device.triesNowaitWrites {
            // This filesystem takes RWF_NOWAIT buffered writes (XFS, btrfs): any size goes in place, never waiting.
            #expect(large.withUnsafeBytes { device.writeNow(offset: 0, from: $0) })
        } else {
            // ext4 refuses them: beyond the inline limit the write is left to the pool.
            #expect(!large.withUnsafeBytes { device.writeNow(offset: 0, from: $0) })
        }
    }
}
