import DepotBackstores
import DepotBlock
import DepotSCSI
import Foundation
import NIOConcurrencyHelpers
import Testing

/// A failed flush is never retried as if nothing happened: the command that
/// saw it fails with MEDIUM ERROR / WRITE ERROR (03h/0Ch/00h, SBC-3 §4.18),
/// and every later SYNCHRONIZE CACHE and FUA write fails the same way without
/// the backstore being asked again — though it would now answer success, as
/// Linux does after it dropped the dirty pages — until the latch is cleared.
/// Data-path errors become sense data, never GOOD; other volumes go on.
@Suite(.serialized) struct FlushLatchTests {
    static let eio = BlockDeviceError.io("fdatasync: Input/output error (EIO)")

    struct Rig {
        let file: TestVolume
        let faulty: FaultyDevice
        let device: VolumeDevice
        let unit: LogicalUnit
        let latched: NIOLockedValueBox<[String]>

        init(_ name: String) throws {
            file = try TestVolume(name)
            faulty = FaultyDevice(try FileBlockDevice(path: file.path, blockSize: 512, readOnly: false, thin: true))
            let latched = NIOLockedValueBox<[String]>([])
            device = VolumeDevice(faulty) { reason in latched.withLockedValue { $0.append(reason) } }
            self.latched = latched
            unit = LogicalUnit(device: device, uuid: UUID(), name: name, readOnly: false)
        }
    }

    static let syncCache10: [UInt8] = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static let syncCache16: [UInt8] = [0x91] + [UInt8](repeating: 0, count: 15)
    static func write10(lba: UInt8, fua: Bool) -> [UInt8] { [0x2A, fua ? 0x08 : 0, 0, 0, 0, lba, 0, 0, 8, 0] }
    static func write16(lba: UInt8, fua: Bool) -> [UInt8] {
        [0x8A, fua ? 0x08 : 0, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, 8, 0, 0]
    }
    static let read10: [UInt8] = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]

    func isWriteError(_ r: SCSIResult) -> Bool {
        r.status == 2 && r.sense?.key == 0x03 && r.sense?.asc == 0x0C && r.sense?.ascq == 0x00
    }

    @Test func aFailedFlushLatchesTheUnitUntilCleared() async throws {
        let a = try Rig("latch-a")
        let b = try Rig("latch-b")
        defer {
            a.file.remove()
            b.file.remove()
        }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        #expect(await a.unit.execute(cdb: Self.write10(lba: 0, fua: false), dataOut: block).status == 0)
        #expect(await a.unit.execute(cdb: Self.syncCache10, dataOut: []).status == 0)

        // The flush fails once; from then on the file system would say success.
        a.faulty.faults.withLockedValue { $0.flush = Self.eio }
        var r = await a.unit.execute(cdb: Self.syncCache10, dataOut: [])
        #expect(isWriteError(r), "the flush that failed: \(r.status) \(String(describing: r.sense))")
        a.faulty.faults.withLockedValue { $0.flush = nil }
        let reached = a.faulty.faults.withLockedValue { $0.flushesReached }
        for cdb in [
            Self.syncCache10, Self.syncCache16, Self.write10(lba: 8, fua: true), Self.write16(lba: 16, fua: true),
        ] {
            r = await a.unit.execute(cdb: cdb, dataOut: cdb[0] == 0x35 || cdb[0] == 0x91 ? [] : block)
            #expect(isWriteError(r), "latched: opcode \(String(cdb[0], radix: 16)) must fail the same way")
        }
        #expect(a.faulty.faults.withLockedValue { $0.flushesReached } == reached, "a latched flush is not retried")
        #expect(a.device.latchedFailure?.contains("EIO") == true)
        #expect(a.latched.withLockedValue { $0 }.count == 1, "the latch is reported once")
        // Plain writes and reads still work (they promise nothing about durability).
        #expect(await a.unit.execute(cdb: Self.write10(lba: 24, fua: false), dataOut: block).status == 0)
        #expect(await a.unit.execute(cdb: Self.read10, dataOut: []).dataInBytes == block)

        // Another volume is not affected.
        #expect(await b.unit.execute(cdb: Self.write10(lba: 0, fua: true), dataOut: block).status == 0)
        #expect(await b.unit.execute(cdb: Self.syncCache16, dataOut: []).status == 0)

        // Cleared by the operator: flushes reach the backstore again, and a new failure latches again.
        a.device.clearLatch()
        #expect(await a.unit.execute(cdb: Self.syncCache10, dataOut: []).status == 0)
        #expect(a.faulty.faults.withLockedValue { $0.flushesReached } == reached + 1)
        a.faulty.faults.withLockedValue { $0.flush = Self.eio }
        #expect(isWriteError(await a.unit.execute(cdb: Self.write10(lba: 0, fua: true), dataOut: block)))
        a.faulty.faults.withLockedValue { $0.flush = nil }
        #expect(isWriteError(await a.unit.execute(cdb: Self.syncCache10, dataOut: [])))
        #expect(a.latched.withLockedValue { $0 }.count == 2)
    }

    @Test func dataPathErrorsBecomeSenseDataNeverGood() async throws {
        let a = try Rig("datapath")
        defer { a.file.remove() }
        let block = [UInt8](repeating: 0x5A, count: 4096)
        a.faulty.faults.withLockedValue { $0.write = Self.eio }
        var r = await a.unit.execute(cdb: Self.write10(lba: 0, fua: false), dataOut: block)
        #expect(isWriteError(r), "EIO on write: \(r.status) \(String(describing: r.sense))")
        a.faulty.faults.withLockedValue { $0.write = .noSpace }
        r = await a.unit.execute(cdb: Self.write16(lba: 0, fua: false), dataOut: block)
        // ENOSPC from the file system: SPACE ALLOCATION FAILED WRITE PROTECT (07h/27h/07h, SBC-3 §4.7.3.6).
        #expect(r.status == 2 && r.sense?.key == 0x07 && r.sense?.asc == 0x27 && r.sense?.ascq == 0x07)
        a.faulty.faults.withLockedValue {
            $0.write = nil
            $0.read = Self.eio
        }
        r = await a.unit.execute(cdb: Self.read10, dataOut: [])
        // Unrecovered read error (03h/11h/00h).
        #expect(r.status == 2 && r.sense?.key == 0x03 && r.sense?.asc == 0x11 && r.sense?.ascq == 0x00)
        // None of these latches flushes.
        a.faulty.faults.withLockedValue { $0.read = nil }
        #expect(await a.unit.execute(cdb: Self.syncCache10, dataOut: []).status == 0)
        #expect(a.device.latchedFailure == nil)
    }

    /// A device opened for a volume the catalog holds latched starts latched.
    @Test func aRecordedFailureLatchesTheDeviceFromTheStart() async throws {
        let file = try TestVolume("recorded")
        defer { file.remove() }
        let device = VolumeDevice(
            try FileBlockDevice(path: file.path, blockSize: 512, readOnly: false), latched: "fdatasync: EIO (before)")
        await #expect(throws: BlockDeviceError.self) { try await device.flush() }
        device.clearLatch()
        try await device.flush()
    }
}
