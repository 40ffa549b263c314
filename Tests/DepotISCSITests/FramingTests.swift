import CDepotPosix
@testable import DepotISCSI
import NIOCore
import Testing

@Suite struct FramingTests {
    @Test func crc32cKnownValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        // RFC 3720 Appendix B.4: 32 bytes of zeros → aa 36 91 8a on the wire.
        #expect(CRC32C.wire(CRC32C.checksum([UInt8](repeating: 0, count: 32))) == [0xAA, 0x36, 0x91, 0x8A])
        #expect(CRC32C.wire(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32))) == [0x43, 0xAB, 0xA8, 0x62])
    }

    /// The SSE4.2 path (eight bytes at a time, then single bytes) and the table
    /// agree for every length and alignment around the 8-byte steps, with seeds.
    @Test func crc32cHardwareAndTableAgree() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4200).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { raw in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 47, 48, 63, 512, 4096 + 3] {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                    let seed = UInt32(length * 2_654_435_761 & 0xFFFF_FFFF)
                    #expect(
                        CRC32C.checksum(slice, seed: seed)
                            == depot_crc32c_software(seed, slice.baseAddress, slice.count),
                        "start \(start) length \(length)")
                }
            }
        }
        // A checksum continued from a seed is the checksum of the whole.
        let whole = CRC32C.checksum(bytes)
        #expect(CRC32C.checksum(bytes[1000...], seed: CRC32C.checksum(bytes[..<1000])) == whole)
        if !CRC32C.hardware { print("note: no SSE4.2 here; both paths are the table") }
    }

    func pdu() -> ISCSIFrame {
        var p = ISCSIFrame(opcode: .scsiCommand)
        p.flags = 0x80
        p.initiatorTaskTag = 0x1234_5678
        p.data = Array("hello, depot".utf8) + [1, 2, 3]  // 15 bytes: one byte of padding
        return p
    }

    /// Encodes, then decodes one byte at a time: a PDU comes out only when all of it is there.
    func roundTrip(_ original: ISCSIFrame, header: Bool, data: Bool) throws -> ISCSIFrame? {
        var p = original
        p.headerDigest = header
        p.dataDigest = data
        var wire = ByteBuffer()
        try ISCSIFrameEncoder().encode(data: p, out: &wire)
        let expected = 48 + (header ? 4 : 0) + 16 + (data ? 4 : 0)
        #expect(wire.readableBytes == expected)
        let settings = DigestSettings()
        settings.enable(header: header, data: data)
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 8192, digests: settings)
        var buffer = ByteBuffer()
        var decoded: ISCSIFrame?
        for byte in wire.readableBytesView {
            buffer.writeInteger(byte)
            if let out = try decoder.decode(buffer: &buffer) {
                #expect(decoded == nil, "one PDU only")
                decoded = out
            }
        }
        #expect(buffer.readableBytes == 0)
        return decoded
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func framesSurviveEveryDigestSetting(header: Bool, data: Bool) throws {
        let decoded = try #require(try roundTrip(pdu(), header: header, data: data))
        #expect(decoded.bhs[0] == 0x01 && decoded.initiatorTaskTag == 0x1234_5678 && decoded.data == pdu().data)
    }

    @Test func corruptedDigestsAndOversizedSegmentsThrow() throws {
        var p = pdu()
        p.headerDigest = true
        var wire = ByteBuffer()
        try ISCSIFrameEncoder().encode(data: p, out: &wire)
        var bytes = Array(wire.readableBytesView)
        bytes[20] ^= 0xFF  // flip a header byte: the header digest no longer matches
        let settings = DigestSettings()
        settings.enable(header: true, data: false)
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 8192, digests: settings)
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: ISCSIFrameDecoder.FramingError.self) { try decoder.decode(buffer: &buffer) }

        var big = [UInt8](repeating: 0, count: 48)
        big[5] = 0x10  // 1 MiB data segment against an 8 KiB limit
        var oversized = ByteBuffer(bytes: big)
        var plain = ISCSIFrameDecoder(maxDataSegmentLength: 8192)
        #expect(throws: ISCSIFrameDecoder.FramingError.self) { try plain.decode(buffer: &oversized) }
    }

    @Test func textKeysRoundTrip() {
        let pairs = [("InitiatorName", "iqn.2026-11.x:y"), ("HeaderDigest", "CRC32C,None")]
        let parsed = TextKeys.parse(TextKeys.encode(pairs))
        #expect(parsed.map(\.0) == pairs.map(\.0) && parsed.map(\.1) == pairs.map(\.1))
    }

    @Test func negotiationPicksTheInitiatorsFirstSupportedDigest() {
        var n = NegotiatedParameters()
        #expect(n.answer("HeaderDigest", "CRC32C,None") == "CRC32C" && n.headerDigest)
        #expect(n.answer("DataDigest", "None,CRC32C") == "None" && !n.dataDigest)
        #expect(n.answer("DataDigest", "MD5") == "Reject")
        #expect(n.answer("MaxBurstLength", "16776192") == "1048576")
        #expect(n.answer("X-com.example.Key", "1") == "NotUnderstood")
    }

    @Test func md5AndCHAPResponse() {
        // MD5(identifier || secret || challenge) with identifier "a", secret "bc", no challenge:
        // MD5("abc") of RFC 1321's test suite.
        #expect(
            CHAP.response(id: UInt8(ascii: "a"), secret: "bc", challenge: []) == [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72,
            ])
        #expect(
            CHAP.decode("0x0a0B") == [0x0A, 0x0B] && CHAP.decode("0bAAE=") == [0x00, 0x01] && CHAP.decode("zz") == nil)
        #expect(CHAP.hex([0x00, 0xFF]) == "0x00ff")
    }
}
