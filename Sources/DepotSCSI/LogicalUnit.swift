import Foundation

/// One SCSI logical unit over a `BlockDevice` (SPC-4, SBC-3), transport-independent:
/// a transport hands it a CDB and data-out, and gets status, sense and data-in.
public final class LogicalUnit: Sendable {
    public let device: any BlockDevice
    public let readOnly: Bool
    /// Stable identity of the volume behind the LU (VPD 80h/83h derive from it).
    public let uuid: UUID
    public let name: String

    public init(device: any BlockDevice, uuid: UUID, name: String, readOnly: Bool) {
        self.device = device
        self.uuid = uuid
        self.name = name
        self.readOnly = readOnly
    }

    var blockCount: UInt64 { device.sizeBytes / UInt64(device.blockSize) }

    /// Bytes of data-out the CDB calls for, or nil when it takes none.
    public func dataOutLength(cdb: [UInt8]) -> Int? {
        guard !cdb.isEmpty else { return nil }
        return BlockIO.dataOutLength(CDB(cdb), blockSize: device.blockSize)
    }

    /// Runs one command. `dataOut` holds what the initiator sent.
    public func execute(cdb bytes: [UInt8], dataOut: [UInt8]) async -> SCSIResult {
        guard let opcode = bytes.first else { return .check(.invalidOpcode) }
        guard let op = SCSIOperations.table[opcode] else { return .check(.invalidOpcode) }
        guard bytes.count >= op.cdbLength else { return .check(.invalidField(byte: bytes.count)) }
        let cdb = CDB(bytes)
        // NACA / LINK in the CONTROL byte are not supported (SAM-5 §5.2).
        if cdb[op.cdbLength - 1] & 0x05 != 0 { return .check(.invalidField(byte: op.cdbLength - 1)) }
        do {
            return try await op.handler(self, cdb, dataOut)
        } catch BlockDeviceError.noSpace {
            return .check(.spaceAllocationFailed)
        } catch {
            return .check(opcode == 0x28 || opcode == 0x88 || opcode == 0x08 ? .readError : .writeError)
        }
    }
}
