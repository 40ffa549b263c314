import DepotSCSI
import NIOCore

/// One iSCSI PDU as framed (RFC 7143 §11): the 48-byte Basic Header Segment,
/// any additional header segments, and the data segment (padding removed).
/// The target reads and writes PDUs through their typed form, `ISCSIPDU`;
/// the frame is what the codec and the test initiators (which also craft
/// hostile bytes) handle.
///
/// The data segment is a `ByteBuffer`: a received segment is a slice of the
/// bytes the socket read and read data is the buffer the volume filled, so
/// write data is copied once (into the command's buffer) and read data not
/// at all. `data` is the same bytes as an array, for the small segments of
/// text keys and for tests.
public struct ISCSIFrame: Sendable, Equatable {
    public var bhs: [UInt8]
    public var ahs: [UInt8]
    /// The data segment, padding removed.
    public var segment: ByteBuffer
    /// Digests to append when this PDU is sent (set by the connection once negotiated).
    public var headerDigest = false
    public var dataDigest = false

    /// The data segment as an array (a copy).
    public var data: [UInt8] {
        get { segment.getBytes(at: segment.readerIndex, length: segment.readableBytes) ?? [] }
        set { segment = ByteBuffer(bytes: newValue) }
    }

    public var dataSegmentLength: Int { segment.readableBytes }

    public init(bhs: [UInt8], ahs: [UInt8] = [], data: [UInt8] = []) {
        self.init(bhs: bhs, ahs: ahs, segment: ByteBuffer(bytes: data))
    }

    public init(bhs: [UInt8], ahs: [UInt8] = [], segment: ByteBuffer) {
        precondition(bhs.count == 48, "a BHS is 48 bytes")
        self.bhs = bhs
        self.ahs = ahs
        self.segment = segment
    }

    /// A target PDU of `opcode` with every other field zero.
    public init(opcode: Opcode) {
        self.init(bhs: [UInt8](repeating: 0, count: 48))
        bhs[0] = opcode.rawValue
    }

    public enum Opcode: UInt8, Sendable {
        // Initiator opcodes (RFC 7143 §11.1.1)
        case nopOut = 0x00, scsiCommand = 0x01, taskManagementRequest = 0x02, loginRequest = 0x03
        case textRequest = 0x04, dataOut = 0x05, logoutRequest = 0x06, snackRequest = 0x10
        // Target opcodes (RFC 7143 §11.1.2)
        case nopIn = 0x20, scsiResponse = 0x21, taskManagementResponse = 0x22, loginResponse = 0x23
        case textResponse = 0x24, dataIn = 0x25, logoutResponse = 0x26, r2t = 0x31, asyncMessage = 0x32, reject = 0x3F
    }

    public var opcodeByte: UInt8 { bhs[0] & 0x3F }
    public var opcode: Opcode? { Opcode(rawValue: opcodeByte) }
    public var immediate: Bool { bhs[0] & 0x40 != 0 }
    public var final: Bool { bhs[1] & 0x80 != 0 }
    public var flags: UInt8 {
        get { bhs[1] }
        set { bhs[1] = newValue }
    }

    public var initiatorTaskTag: UInt32 {
        get { u32(16) }
        set { put32(newValue, 16) }
    }
    /// CmdSN and ExpStatSN of an initiator PDU (bytes 24 and 28 in every
    /// initiator BHS that has them, RFC 7143 §11.2.1).
    public var cmdSN: UInt32 { u32(24) }
    public var expStatSN: UInt32 { u32(28) }
    /// The 8-byte LUN field; a shorter or longer value is padded or cut to 8
    /// bytes, so the BHS stays 48 bytes whatever a caller passes.
    public var lun: [UInt8] {
        get { Array(bhs[8..<16]) }
        set { bhs.replaceSubrange(8..<16, with: (newValue + [UInt8](repeating: 0, count: 8)).prefix(8)) }
    }

    /// BHS fields (big-endian, DepotSCSI's helpers).
    public func u16(_ at: Int) -> UInt16 { bhs.u16(at: at) }
    public func u32(_ at: Int) -> UInt32 { bhs.u32(at: at) }
    public mutating func put16(_ v: UInt16, _ at: Int) { bhs.put16(v, at: at) }
    public mutating func put32(_ v: UInt32, _ at: Int) { bhs.put32(v, at: at) }
}

/// Framing (RFC 7143 §11.2): BHS, AHS (TotalAHSLength words), header digest,
/// data segment padded to 4 bytes, data digest. Digests follow the shared
/// `DigestSettings`, off until the login turns them on.
public struct ISCSIFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ISCSIFrame
    public let maxDataSegmentLength: Int
    let digests: DigestSettings

    public init(maxDataSegmentLength: Int, digests: DigestSettings = DigestSettings()) {
        self.maxDataSegmentLength = maxDataSegmentLength
        self.digests = digests
    }

    public enum FramingError: Error, Equatable {
        case dataSegmentTooLong(Int), headerDigestMismatch, dataDigestMismatch
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ISCSIFrame? {
        guard buffer.readableBytes >= 48, let header = buffer.getBytes(at: buffer.readerIndex, length: 48) else {
            return nil
        }
        let (useHeader, useData) = digests.current
        let ahsLength = Int(header[4]) * 4
        let dataLength = Int(header.u24(at: 5))
        guard dataLength <= maxDataSegmentLength else { throw FramingError.dataSegmentTooLong(dataLength) }
        let padded = (dataLength + 3) & ~3
        let headerDigestLength = useHeader ? 4 : 0
        let dataDigestLength = useData && dataLength > 0 ? 4 : 0
        guard buffer.readableBytes >= 48 + ahsLength + headerDigestLength + padded + dataDigestLength else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: 48)
        let ahs = buffer.readBytes(length: ahsLength) ?? []
        if useHeader {
            // A header digest error at ErrorRecoveryLevel 0 ends the connection (RFC 7143 §7.8).
            guard buffer.readBytes(length: 4) == CRC32C.wire(CRC32C.checksum(header + ahs)) else {
                throw FramingError.headerDigestMismatch
            }
        }
        // The segment is a slice of the received bytes, not a copy.
        let withPadding = buffer.readSlice(length: padded) ?? ByteBuffer()  // present: counted above
        if dataDigestLength > 0 {
            let crc = withPadding.withUnsafeReadableBytes { CRC32C.checksum($0) }
            guard buffer.readBytes(length: 4) == CRC32C.wire(crc) else {
                throw FramingError.dataDigestMismatch
            }
        }
        return ISCSIFrame(
            bhs: header, ahs: ahs,
            segment: withPadding.getSlice(at: withPadding.readerIndex, length: dataLength) ?? withPadding)
    }

    /// The length on the wire of the frame that starts at `buffer`'s reader
    /// index, once its first 8 bytes are there (at most the longest frame
    /// this decoder accepts: a longer one is refused when decoded).
    public func frameLength(startingIn buffer: ByteBuffer) -> Int? {
        guard let words = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self) else { return nil }
        let (useHeader, useData) = digests.current
        let dataLength = min(Int(words & 0x00FF_FFFF), maxDataSegmentLength)
        return 48 + Int(words >> 24) * 4 + (useHeader ? 4 : 0) + (dataLength + 3) & ~3
            + (useData && dataLength > 0 ? 4 : 0)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ISCSIFrame? {
        try decode(buffer: &buffer)
    }
}

public struct ISCSIFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ISCSIFrame

    public init() {}

    public func encode(data pdu: ISCSIFrame, out: inout ByteBuffer) throws {
        Self.frame(pdu, into: &out)
    }

    /// Appends one framed PDU (lengths filled in, padding, digests as the PDU asks).
    public static func frame(_ pdu: ISCSIFrame, into out: inout ByteBuffer) {
        frameHeader(pdu, into: &out)
        out.writeImmutableBuffer(pdu.segment)
        frameTrailer(pdu, into: &out)
    }

    /// BHS (with the lengths filled in), AHS, header digest.
    public static func frameHeader(_ pdu: ISCSIFrame, into out: inout ByteBuffer) {
        var bhs = pdu.bhs
        let length = pdu.dataSegmentLength
        bhs[4] = UInt8(pdu.ahs.count / 4)
        bhs[5] = UInt8(truncatingIfNeeded: length >> 16)
        bhs[6] = UInt8(truncatingIfNeeded: length >> 8)
        bhs[7] = UInt8(truncatingIfNeeded: length)
        out.writeBytes(bhs)
        out.writeBytes(pdu.ahs)
        if pdu.headerDigest { out.writeBytes(CRC32C.wire(CRC32C.checksum(bhs + pdu.ahs))) }
    }

    /// What follows the data segment: padding to 4 bytes, data digest.
    public static func frameTrailer(_ pdu: ISCSIFrame, into out: inout ByteBuffer) {
        let length = pdu.dataSegmentLength
        let pad = (4 - length % 4) % 4
        if pad > 0 { out.writeRepeatingByte(0, count: pad) }
        if pdu.dataDigest, length > 0 {
            let crc = pdu.segment.withUnsafeReadableBytes { CRC32C.checksum($0) }
            out.writeBytes(CRC32C.wire(CRC32C.checksum([UInt8](repeating: 0, count: pad), seed: crc)))
        }
    }
}
