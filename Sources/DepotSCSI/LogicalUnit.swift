import DepotBlock
import Foundation
import Synchronization
import NIOConcurrencyHelpers

/// One SCSI logical unit over a `BlockDevice` (SPC-4, SBC-3), transport-independent:
/// a transport hands it a CDB and data-out, and gets status, sense and data-in.
public final class LogicalUnit: Sendable {
    public let device: any BlockDevice
    public let readOnly: Bool
    /// Stable identity of the volume behind the LU (VPD 80h/83h derive from it).
    public let uuid: UUID
    public let name: String
    /// The I_T nexus holding an SPC-2 reservation, if any.
    private let reservation = NIOLockedValueBox<ITNexus?>(nil)
    /// Current mode parameters MODE SELECT may change (shared by every I_T
    /// nexus; not saveable, so they return to defaults when the LU is rebuilt).
    let mode = NIOLockedValueBox(ModeParameters())

    /// Persistent reservations (SPC-4 §5.12) of the volume behind the LU.
    public let persistentReservations: PersistentReservations

    public init(
        device: any BlockDevice, uuid: UUID, name: String, readOnly: Bool,
        persistentReservations: PersistentReservations = PersistentReservations()
    ) {
        self.persistentReservations = persistentReservations
        self.device = device
        self.uuid = uuid
        self.name = name
        self.readOnly = readOnly
    }

    var blockCount: UInt64 { device.sizeBytes / UInt64(device.blockSize) }

    /// Every write to the medium passes here, so atomic operations exclude it.
    let writeGate = WriteGate()

    func write(offset: UInt64, bytes: [UInt8]) async throws {
        if spaceExhausted.load(ordering: .relaxed) { try await checkSpace(offset: offset, length: UInt64(bytes.count)) }
        if liveTokens.load(ordering: .relaxed) > 0 {
            Offload.noteWrite(self, offset: offset, length: UInt64(bytes.count))
        }
        try await writeGate.shared { try await device.write(offset: offset, bytes: bytes) }
    }

    func unmap(offset: UInt64, length: UInt64) async throws {
        if liveTokens.load(ordering: .relaxed) > 0 { Offload.noteWrite(self, offset: offset, length: length) }
        try await writeGate.shared { try await device.unmap(offset: offset, length: length) }
    }

    /// Writes are refused: the LUN is mapped read-only, or SWP is set (SPC-4 §7.5.7).
    var writeProtected: Bool { readOnly || mode.withLockedValue { $0.softwareWriteProtect } }

    /// The SANITIZE operation running on the LU, if any; `sanitizeRunning`
    /// lets every other command skip the lock while none runs.
    private let sanitizing = NIOLockedValueBox<Sanitize.Progress?>(nil)
    private let sanitizeRunning = Atomic<Bool>(false)

    func beginSanitize(_ progress: Sanitize.Progress) -> Bool {
        sanitizing.withLockedValue { current in
            guard current == nil else { return false }
            current = progress
            sanitizeRunning.store(true, ordering: .releasing)
            return true
        }
    }

    func endSanitize() {
        sanitizing.withLockedValue {
            $0 = nil
            sanitizeRunning.store(false, ordering: .releasing)
        }
    }

    /// Whether a SANITIZE runs (one atomic load).
    var sanitizeActive: Bool { sanitizeRunning.load(ordering: .acquiring) }

    var sanitizeProgress: UInt16? {
        guard sanitizeRunning.load(ordering: .acquiring) else { return nil }
        return sanitizing.withLockedValue { $0?.indication }
    }

    func anchor(offset: UInt64, length: UInt64) async throws {
        if liveTokens.load(ordering: .relaxed) > 0 { Offload.noteWrite(self, offset: offset, length: length) }
        try await writeGate.shared { try await device.anchor(offset: offset, length: length) }
    }

    /// The pool under the LU as the last capacity rescan saw it.
    let poolSpace = NIOLockedValueBox<PoolSpace?>(nil)
    /// The pool has nothing left to allocate (thin writes to holes are refused).
    let spaceExhausted = Atomic<Bool>(false)

    /// Usable ROD tokens made from this LU (ODX); writes check for overlap only then.
    let liveTokens = Atomic<Int>(0)
    /// Copy command outcomes for RECEIVE COPY RESULTS.
    let copyResults = CopyResults()

    /// Bytes a READ's CDB asks the medium for (what its data-in buffer will
    /// hold, if it is not refused for MAXIMUM TRANSFER LENGTH), and what
    /// VERIFY with BYTCHK and ORWRITE read to compare or merge; 0 for any
    /// other command, whose buffers are small.
    public func dataInLength(cdb: [UInt8]) -> Int {
        guard !cdb.isEmpty else { return 0 }
        let c = CDB(cdb)
        let bs = device.blockSize
        let bytes: Int
        switch c.opcode {
        case 0x08: bytes = BlockIO.bytes(c[4] == 0 ? 256 : UInt32(c[4]), bs)
        case 0x28: bytes = BlockIO.bytes(UInt32(c.u16(7)), bs)
        case 0xA8: bytes = BlockIO.bytes(c.u32(6), bs)
        case 0x88, 0x8B: bytes = BlockIO.bytes(c.u32(10), bs)
        case 0x2F where (c[1] >> 1) & 0x3 == 1: bytes = BlockIO.bytes(UInt32(c.u16(7)), bs)
        case 0xAF where (c[1] >> 1) & 0x3 == 1: bytes = BlockIO.bytes(c.u32(6), bs)
        case 0x8F where (c[1] >> 1) & 0x3 == 1: bytes = BlockIO.bytes(c.u32(10), bs)
        default: return 0
        }
        return bytes > BlockIO.maxTransferBytes ? 0 : bytes
    }

    /// Bytes of data-out the CDB calls for, or nil when it takes none.
    public func dataOutLength(cdb: [UInt8]) -> Int? {
        guard !cdb.isEmpty else { return nil }
        return BlockIO.dataOutLength(CDB(cdb), blockSize: device.blockSize)
    }

    /// The I_T nexus whose command a handler is running and the LUs it may
    /// name as copy targets (for handlers that affect other nexuses, such as
    /// MODE SELECT, or reach other LUs, such as EXTENDED COPY).
    @TaskLocal static var context = CommandContext()

    /// The NAA designator of VPD 83h (type 3, 16 bytes), by which copy
    /// commands name this LU.
    public var naaDesignator: [UInt8] { Inquiry.naa(self) }

    /// Unit attentions established for other I_T nexuses (LUN RESET, MODE
    /// SELECT, persistent reservation changes): a sequence each nexus reads
    /// from its own cursor, every event naming the nexuses it is for. Only
    /// the latest `keptEvents` are kept.
    private let events = NIOLockedValueBox<
        (next: UInt64, recent: [(seq: UInt64, sense: SCSISense, audience: @Sendable (ITNexus) -> Bool)])
    >((1, []))
    static let keptEvents = 32

    /// Establishes `sense` as a unit attention for every nexus except `origin`.
    public func announce(_ sense: SCSISense, except origin: ITNexus?) {
        announce(sense) { $0 != origin }
    }

    /// Establishes `sense` for the nexuses `audience` accepts.
    func announce(_ sense: SCSISense, to audience: @escaping @Sendable (ITNexus) -> Bool) {
        events.withLockedValue { state in
            state.recent.append((state.next, sense, audience))
            state.next += 1
            if state.recent.count > Self.keptEvents { state.recent.removeFirst(state.recent.count - Self.keptEvents) }
        }
    }

    /// Where a nexus that starts now begins reading events.
    public var eventCursor: UInt64 { events.withLockedValue { $0.next } }

    /// Events after `cursor` meant for `nexus`, and the new cursor.
    /// The name of a CDB's operation, for logs ("WRITE(16)").
    public static func operationName(_ opcode: UInt8) -> String { SCSIOperations.name(of: opcode) }

    public func events(after cursor: UInt64, for nexus: ITNexus) -> (cursor: UInt64, senses: [SCSISense]) {
        events.withLockedValue { state in
            // Almost always nothing new: no allocation then.
            if state.next == cursor { return (cursor, []) }
            return (state.next, state.recent.filter { $0.seq >= cursor && $0.audience(nexus) }.map(\.sense))
        }
    }

    /// CHECK CONDITION with the sense in the format D_SENSE selects (SPC-4 §7.5.7).
    public func check(_ sense: SCSISense) -> SCSIResult {
        SCSIResult(
            status: SCSIResult.checkCondition, sense: sense, dataIn: [],
            descriptorSense: mode.withLockedValue { $0.descriptorSense })
    }

    /// What a command's handler may know of its caller.
    public struct CommandContext: Sendable {
        /// Finds an LU by NAA designator among those the nexus may reach.
        public typealias CopyTargets = @Sendable ([UInt8]) -> LogicalUnit?
        public var nexus = ITNexus.none
        /// The target portal group (and relative target port) the command came through.
        public var portalGroup: UInt16 = 1
        public var copyTargets: CopyTargets = { _ in nil }
        /// Aborts the tasks on an LU of the nexuses the predicate accepts, and waits for them.
        public typealias AbortTasks = @Sendable (LogicalUnit, @escaping @Sendable (ITNexus) -> Bool) async -> Void
        public var abortTasks: AbortTasks = { _, _ in }
    }

    /// I_T nexus loss (SAM-5 §6.3.4): its SPC-2 reservation and its copy
    /// results go; persistent reservations stay.
    public func nexusLost(_ nexus: ITNexus) {
        clearReservation(heldBy: nexus)
        copyResults.forget(nexus: nexus)
    }

    /// Whether any nexus holds an SPC-2 reservation.
    var reservationHeld: Bool { reservation.withLockedValue { $0 != nil } }

    /// Takes the SPC-2 reservation for `nexus`; false when another holds it.
    func reserve(for nexus: ITNexus) -> Bool {
        reservation.withLockedValue { current in
            if let current, current != nexus { return false }
            current = nexus
            return true
        }
    }

    /// Drops a reservation: LUN reset, target reset, or the holder's nexus gone.
    public func clearReservation(heldBy nexus: ITNexus? = nil) {
        reservation.withLockedValue { holder in
            if nexus == nil || holder == nexus { holder = nil }
        }
    }

    /// Runs one command for I_T nexus `nexus`. `dataOut` holds what the initiator sent.
    public func execute(
        cdb bytes: [UInt8], dataOut: [UInt8], nexus: ITNexus = .none, portalGroup: UInt16 = 1,
        copyTargets: CommandContext.CopyTargets? = nil,
        abortTasks: CommandContext.AbortTasks? = nil
    ) async -> SCSIResult {
        guard let opcode = bytes.first else { return check(.invalidOpcode) }
        guard let op = SCSIOperations.table[opcode] else { return check(.invalidOpcode) }
        guard bytes.count >= op.cdbLength else { return check(.invalidField(byte: bytes.count)) }
        let cdb = CDB(bytes)
        // While SANITIZE runs only INQUIRY and REQUEST SENSE are served (SBC-4 §4.11.2).
        if let progress = sanitizeProgress, opcode != 0x12 {
            let sense = SCSISense.sanitizeInProgress(progress)
            return opcode == 0x03 ? .ok(sense.fixedFormat.allocated(Int(cdb[4]))) : check(sense)
        }
        // NACA / LINK in the CONTROL byte are not supported (SAM-5 §5.2).
        if cdb[op.cdbLength - 1] & 0x05 != 0 { return check(.invalidField(byte: op.cdbLength - 1)) }
        let holder = reservation.withLockedValue { $0 }
        if let holder, holder != nexus, !op.allowedUnderReservation {
            return SCSIResult(status: Reservations.conflict, sense: nil, dataIn: [])
        }
        if op.access != .unrestricted, persistentReservations.conflicts(op.access, from: nexus) {
            return SCSIResult(status: Reservations.conflict, sense: nil, dataIn: [])
        }
        var result: SCSIResult
        do {
            if op.needsContext {
                let context = CommandContext(
                    nexus: nexus, portalGroup: portalGroup,
                    copyTargets: copyTargets ?? { [self] in $0 == self.naaDesignator ? self : nil },
                    abortTasks: abortTasks ?? { _, _ in })
                result = try await LogicalUnit.$context.withValue(context) { try await op.handler(self, cdb, dataOut) }
            } else {
                result = try await op.handler(self, cdb, dataOut)
            }
        } catch BlockDeviceError.noSpace {
            result = .check(.spaceAllocationFailed)
        } catch {
            result = .check(opcode == 0x28 || opcode == 0x88 || opcode == 0x08 ? .readError : .writeError)
        }
        if result.sense != nil { result.descriptorSense = mode.withLockedValue { $0.descriptorSense } }
        return result
    }
}
