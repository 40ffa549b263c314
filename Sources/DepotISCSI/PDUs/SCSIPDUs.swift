import DepotSCSI
import NIOCore

/// SCSI Command (RFC 7143 §11.3).
public struct SCSICommand: Sendable, Equatable {
    public var immediate = false
    public var final = true
    public var read = false
    public var write = false
    /// Task attribute (SAM-5 §8.6): 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA.
    public var attribute: UInt8 = 1
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    public var expectedLength: UInt32 = 0
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0
    /// The CDB field (16 bytes; a longer CDB would need an AHS).
    public var cdb: [UInt8] = [UInt8](repeating: 0, count: 16)
    /// Immediate data (a slice of the received bytes).
    public var data = ByteBuffer()

    public init() {}

    public init(_ frame: ISCSIFrame) {
        immediate = frame.immediate
        final = frame.final
        read = frame.flags & 0x40 != 0
        write = frame.flags & 0x20 != 0
        attribute = frame.flags & 0x07
        lun = frame.lun
        tag = frame.initiatorTaskTag
        expectedLength = frame.u32(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
        cdb = Array(frame.bhs[32..<48])
        data = frame.segment
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(
            .scsiCommand, immediate: immediate,
            flags: (final ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | attribute & 0x07)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(expectedLength, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        f.bhs.replaceSubrange(32..<48, with: (cdb + [UInt8](repeating: 0, count: 16)).prefix(16))
        f.segment = data
        return f
    }
}

/// SCSI Response (RFC 7143 §11.4): status, residuals, sense data.
public struct SCSIResponse: Sendable, Equatable {
    /// 00h command completed at target (§11.4.3).
    public var response: UInt8 = 0
    public var status: UInt8 = 0
    public var tag: UInt32 = 0
    /// O (overflow) or U (underflow) and the residual count (§11.4.5).
    public var overflow = false
    public var underflow = false
    public var residual: UInt32 = 0
    /// Sense data, sent with its 2-byte length (§11.4.7.2).
    public var sense: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        response = frame.bhs[2]
        status = frame.bhs[3]
        tag = frame.initiatorTaskTag
        overflow = frame.flags & 0x04 != 0
        underflow = frame.flags & 0x02 != 0
        residual = frame.u32(44)
        let length = Int(frame.data.u16(at: 0))
        sense = Array(frame.data.dropFirst(2).prefix(length))
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.scsiResponse, flags: 0x80 | (overflow ? 0x04 : 0) | (underflow ? 0x02 : 0))
        f.bhs[2] = response
        f.bhs[3] = status
        f.initiatorTaskTag = tag
        f.put32(residual, 44)
        if !sense.isEmpty {
            f.data = [UInt8(truncatingIfNeeded: sense.count >> 8), UInt8(truncatingIfNeeded: sense.count)] + sense
        }
        return f
    }
}

/// SCSI Data-Out (RFC 7143 §11.7): solicited data for a write.
public struct DataOut: Sendable, Equatable {
    public var final = true
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var expStatSN: UInt32 = 0
    public var dataSN: UInt32 = 0
    public var offset: UInt32 = 0
    /// The segment (a slice of the received bytes, or the volume's read buffer).
    public var data = ByteBuffer()

    public init() {}

    public init(_ frame: ISCSIFrame) {
        final = frame.final
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        expStatSN = frame.u32(28)
        dataSN = frame.u32(36)
        offset = frame.u32(40)
        data = frame.segment
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.dataOut, flags: final ? 0x80 : 0)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.put32(expStatSN, 28)
        f.put32(dataSN, 36)
        f.put32(offset, 40)
        f.segment = data
        return f
    }
}

/// SCSI Data-In (RFC 7143 §11.7): read data, the last PDU optionally with status.
public struct DataIn: Sendable, Equatable {
    public var final = true
    /// S: the status is in this PDU (§11.7.3), with the residuals.
    public var carriesStatus = false
    public var status: UInt8 = 0
    public var overflow = false
    public var underflow = false
    public var residual: UInt32 = 0
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    public var dataSN: UInt32 = 0
    public var offset: UInt32 = 0
    /// The segment (a slice of the received bytes, or the volume's read buffer).
    public var data = ByteBuffer()

    public init() {}

    public init(_ frame: ISCSIFrame) {
        final = frame.final
        carriesStatus = frame.flags & 0x01 != 0
        overflow = frame.flags & 0x04 != 0
        underflow = frame.flags & 0x02 != 0
        status = frame.bhs[3]
        residual = frame.u32(44)
        lun = frame.lun
        tag = frame.initiatorTaskTag
        dataSN = frame.u32(36)
        offset = frame.u32(40)
        data = frame.segment
    }

    public var frame: ISCSIFrame {
        // O and U (and the residual) mean something only with the status (§11.7.5).
        let residualFlags: UInt8 = carriesStatus ? (overflow ? 0x04 : 0) | (underflow ? 0x02 : 0) : 0
        var f = ISCSIFrame(.dataIn, flags: (final ? 0x80 : 0) | residualFlags | (carriesStatus ? 0x01 : 0))
        if carriesStatus { f.bhs[3] = status }
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(0xFFFF_FFFF, 20)
        f.put32(dataSN, 36)
        f.put32(offset, 40)
        if carriesStatus { f.put32(residual, 44) }
        f.segment = data
        return f
    }
}

/// Ready To Transfer (RFC 7143 §11.8): one burst solicited.
public struct R2T: Sendable, Equatable {
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    public var transferTag: UInt32 = 0
    public var r2tSN: UInt32 = 0
    public var offset: UInt32 = 0
    public var length: UInt32 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        r2tSN = frame.u32(36)
        offset = frame.u32(40)
        length = frame.u32(44)
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.r2t)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.put32(r2tSN, 36)
        f.put32(offset, 40)
        f.put32(length, 44)
        return f
    }
}
