import NIOCore

/// Typed PDUs straight from and to bytes: `readISCSIPDU` / `writeISCSIPDU`,
/// the pair the codec tests drive. Framing (RFC 7143 §11.2: lengths,
/// padding, digests) is `ISCSIFrameDecoder`'s and `ISCSIFrameEncoder`'s; the
/// data segment of a PDU read is a slice of this buffer, not a copy.
extension ByteBuffer {
    /// The next whole PDU, or nil (nothing consumed) until all of it is here.
    /// Throws what the decoder throws (an oversized segment, a digest that does
    /// not match); the connection ends on either (§7.8).
    public mutating func readISCSIPDU(
        maxDataSegmentLength: Int, digests: DigestSettings = DigestSettings()
    ) throws -> ISCSIPDU? {
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: maxDataSegmentLength, digests: digests)
        return try decoder.decode(buffer: &self).map(ISCSIPDU.init)
    }

    /// Appends `pdu` framed (digests as asked); returns the bytes written.
    @discardableResult
    public mutating func writeISCSIPDU(_ pdu: ISCSIPDU, headerDigest: Bool = false, dataDigest: Bool = false) -> Int {
        let start = writerIndex
        var frame = pdu.frame
        (frame.headerDigest, frame.dataDigest) = (headerDigest, dataDigest)
        ISCSIFrameEncoder.frame(frame, into: &self)
        return writerIndex - start
    }
}
