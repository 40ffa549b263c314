import NIOCore

/// Sense data (SPC-4 §4.5): fixed format (response code 70h, 18 bytes) or
/// descriptor format (72h) when the control mode page's D_SENSE bit is set.
public struct SCSISense: Sendable, Equatable {
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8
    /// Sense-key specific field pointer for INVALID FIELD IN CDB (SPC-4 §4.5.2.4.2).
    public var fieldPointer: UInt16?
    public var bitPointer: UInt8?
    public var information: UInt32?

    public init(
        key: UInt8, asc: UInt8, ascq: UInt8, fieldPointer: UInt16? = nil, bitPointer: UInt8? = nil,
        information: UInt32? = nil
    ) {
        self.key = key
        self.asc = asc
        self.ascq = ascq
        self.fieldPointer = fieldPointer
        self.bitPointer = bitPointer
        self.information = information
    }

    public static let noSense: UInt8 = 0x0
    public static let notReady: UInt8 = 0x2
    public static let mediumError: UInt8 = 0x3
    public static let hardwareError: UInt8 = 0x4
    public static let illegalRequest: UInt8 = 0x5
    public static let unitAttention: UInt8 = 0x6
    public static let dataProtect: UInt8 = 0x7

    public static let invalidOpcode = SCSISense(key: illegalRequest, asc: 0x20, ascq: 0x00)
    public static let lbaOutOfRange = SCSISense(key: illegalRequest, asc: 0x21, ascq: 0x00)
    public static let logicalUnitNotSupported = SCSISense(key: illegalRequest, asc: 0x25, ascq: 0x00)
    public static let writeProtected = SCSISense(key: dataProtect, asc: 0x27, ascq: 0x00)
    public static let spaceAllocationFailed = SCSISense(key: dataProtect, asc: 0x27, ascq: 0x07)
    public static let writeError = SCSISense(key: mediumError, asc: 0x0C, ascq: 0x00)
    public static let readError = SCSISense(key: mediumError, asc: 0x11, ascq: 0x00)
    /// Unit attentions (SPC-4 §6.37, table of ASC/ASCQ assignments).
    public static let reportedLUNsChanged = SCSISense(key: unitAttention, asc: 0x3F, ascq: 0x0E)
    public static let capacityChanged = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x09)
    /// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (28h/00h): a rollback replaced the data.
    public static let mediumMayHaveChanged = SCSISense(key: unitAttention, asc: 0x28, ascq: 0x00)
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (SPC-4 §6.37).
    public static let powerOnReset = SCSISense(key: unitAttention, asc: 0x29, ascq: 0x00)
    /// BUS DEVICE RESET FUNCTION OCCURRED: another nexus reset the LU (SAM-5 §7.7).
    public static let busDeviceReset = SCSISense(key: unitAttention, asc: 0x29, ascq: 0x03)
    /// MODE PARAMETERS CHANGED: another nexus ran MODE SELECT (SPC-4 §6.9).
    public static let modeParametersChanged = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x01)
    /// ALUA (SPC-4 §5.16): ASYMMETRIC ACCESS STATE CHANGED; LOGICAL UNIT NOT
    /// ACCESSIBLE, TARGET PORT IN STANDBY / UNAVAILABLE STATE.
    public static let asymmetricAccessStateChanged = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x06)
    public static let targetPortStandby = SCSISense(key: notReady, asc: 0x04, ascq: 0x0B)
    public static let targetPortUnavailable = SCSISense(key: notReady, asc: 0x04, ascq: 0x0C)
    public static let parameterListLengthError = SCSISense(key: illegalRequest, asc: 0x1A, ascq: 0x00)

    /// INVALID FIELD IN CDB with the byte (and bit) that is wrong.
    public static func invalidField(byte: Int, bit: Int? = nil) -> SCSISense {
        SCSISense(
            key: illegalRequest, asc: 0x24, ascq: 0x00, fieldPointer: UInt16(clamping: byte),
            bitPointer: bit.map { UInt8(clamping: $0 & 0x7) })
    }

    /// INVALID FIELD IN PARAMETER LIST, pointing at the byte (C/D=0). The
    /// FIELD POINTER is 16 bits (SPC-4 §4.5.2.4.2) while a parameter list may
    /// be 32 MiB: a byte beyond 65535 is reported as 65535, never a trap.
    public static func invalidParameter(byte: Int, bit: Int? = nil) -> SCSISense {
        var sense = SCSISense(
            key: illegalRequest, asc: 0x26, ascq: 0x00, fieldPointer: UInt16(clamping: byte),
            bitPointer: bit.map { UInt8(clamping: $0 & 0x7) })
        sense.inParameterList = true
        return sense
    }

    /// The field pointer names a parameter-list byte rather than a CDB byte.
    public var inParameterList = false
    /// PROGRESS INDICATION for NOT READY (SPC-4 §4.5.2.4.4), 0...65535.
    public var progress: UInt16?

    /// Sense-key specific bytes (SPC-4 §4.5.2.4.2): SKSV, C/D, BPV, bit and field pointer.
    private var senseKeySpecific: [UInt8]? {
        if let progress { return [0x80, UInt8(progress >> 8), UInt8(truncatingIfNeeded: progress)] }
        guard let field = fieldPointer else { return nil }
        let cd: UInt8 = inParameterList ? 0 : 0x40
        return [
            0x80 | cd | (bitPointer != nil ? 0x08 | (bitPointer! & 0x7) : 0), UInt8(field >> 8),
            UInt8(truncatingIfNeeded: field),
        ]
    }

    /// Descriptor format (SPC-4 §4.5.2): information descriptor (00h) and
    /// sense-key specific descriptor (02h) when those fields are set.
    public var descriptorFormat: [UInt8] {
        var b: [UInt8] = [0x72, key & 0x0F, asc, ascq, 0, 0, 0, 0]
        if let info = information {
            b += [0x00, 0x0A, 0x80, 0]
            b += (0..<8).map { UInt8(truncatingIfNeeded: UInt64(info) >> (56 - 8 * $0)) }
        }
        if let sks = senseKeySpecific { b += [0x02, 0x06, 0, 0] + sks + [0] }
        b[7] = UInt8(b.count - 8)
        return b
    }

    public var fixedFormat: [UInt8] {
        var b = [UInt8](repeating: 0, count: 18)
        b[0] = 0x70 | (information != nil ? 0x80 : 0)
        b[2] = key & 0x0F
        if let info = information {
            b[3] = UInt8(info >> 24)
            b[4] = UInt8(truncatingIfNeeded: info >> 16)
            b[5] = UInt8(truncatingIfNeeded: info >> 8)
            b[6] = UInt8(truncatingIfNeeded: info)
        }
        b[7] = 10
        b[12] = asc
        b[13] = ascq
        if let sks = senseKeySpecific { b.replaceSubrange(15..<18, with: sks) }
        return b
    }
}

/// The outcome of one command: SAM status, sense for CHECK CONDITION, data-in.
/// Bulk data read from a volume comes as `bulk` (a buffer the transport sends
/// as it is, without another copy); everything else as `dataIn`.
public struct SCSIResult: Sendable {
    public var status: UInt8
    public var sense: SCSISense?
    public var dataIn: [UInt8]
    public var bulk: ByteBuffer?

    /// Bytes of data-in, whichever form they take.
    public var dataInCount: Int { bulk?.readableBytes ?? dataIn.count }
    /// Sense goes out in descriptor format (the LU's D_SENSE is set).
    public var descriptorSense = false

    public init(status: UInt8, sense: SCSISense?, dataIn: [UInt8], descriptorSense: Bool = false) {
        self.status = status
        self.sense = sense
        self.dataIn = dataIn
        self.descriptorSense = descriptorSense
    }

    /// The sense data as sent after CHECK CONDITION.
    public var senseBytes: [UInt8]? {
        sense.map { descriptorSense ? $0.descriptorFormat : $0.fixedFormat }
    }

    public static let good: UInt8 = 0x00
    public static let checkCondition: UInt8 = 0x02
    /// TASK SET FULL (SAM-5 §5.3.1): the task set has no room for the command.
    public static let taskSetFull: UInt8 = 0x28

    public static func ok(_ data: [UInt8] = []) -> SCSIResult { SCSIResult(status: good, sense: nil, dataIn: data) }
    public static func ok(bulk: ByteBuffer) -> SCSIResult {
        var result = SCSIResult(status: good, sense: nil, dataIn: [])
        result.bulk = bulk
        return result
    }
    public static func check(_ sense: SCSISense) -> SCSIResult {
        SCSIResult(status: checkCondition, sense: sense, dataIn: [])
    }
}
