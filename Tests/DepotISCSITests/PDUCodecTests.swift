import DepotInitiator
import NIOCore
import NIOTestUtils
import Testing

@testable import DepotISCSI

/// The codec (RFC 7143 §11.2 framing) and the typed PDUs: the frame decoder
/// checked with NIO's ByteToMessageDecoderVerifier (every split point of the
/// input, one byte at a time, everything at once), digests off and on; and
/// every typed PDU kind written to a frame and read back unchanged.
@Suite struct PDUCodecTests {
    /// Frames with the shapes the decoder must get right: no data, data whose
    /// length needs padding, an AHS, a full 8 KiB segment.
    static func frames() -> [ISCSIFrame] {
        var rng = SeededRandom(seed: 0xC0DEC)
        var out: [ISCSIFrame] = []
        for (opcode, dataLength, ahsWords) in [
            (0x00, 0, 0), (0x01, 13, 0), (0x05, 512, 0), (0x04, 3, 1), (0x01, 8192, 2), (0x06, 0, 0),
        ] {
            var frame = ISCSIFrame(bhs: rng.bytes(48), ahs: rng.bytes(ahsWords * 4), data: rng.bytes(dataLength))
            frame.bhs[0] = UInt8(opcode) | 0x40
            // What the decoder hands on: the lengths as framed.
            frame.bhs[4] = UInt8(ahsWords)
            frame.bhs[5] = 0
            frame.bhs[6] = UInt8(dataLength >> 8)
            frame.bhs[7] = UInt8(dataLength & 0xFF)
            out.append(frame)
        }
        return out
    }

    @Test(arguments: [false, true])
    func theFrameDecoderHandlesEverySplitPoint(digests: Bool) throws {
        let settings = DigestSettings()
        settings.enable(header: digests, data: digests)
        var pairs: [(ByteBuffer, [ISCSIFrame])] = []
        for frame in Self.frames() {
            var sent = frame
            sent.headerDigest = digests
            sent.dataDigest = digests
            var bytes = ByteBuffer()
            ISCSIFrameEncoder.frame(sent, into: &bytes)
            pairs.append((bytes, [frame]))
        }
        // All of them back to back, as one stream.
        var stream = ByteBuffer()
        for (bytes, _) in pairs { stream.writeImmutableBuffer(bytes) }
        pairs.append((stream, Self.frames()))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            ISCSIFrameDecoder(maxDataSegmentLength: 262_144, digests: settings)
        }
    }

    @Test func aCorruptDigestOrAnOversizedSegmentIsAnError() throws {
        let settings = DigestSettings()
        settings.enable(header: true, data: true)
        var frame = Self.frames()[1]
        frame.headerDigest = true
        frame.dataDigest = true
        var bytes = ByteBuffer()
        ISCSIFrameEncoder.frame(frame, into: &bytes)
        var corrupt = bytes
        corrupt.setInteger(corrupt.getInteger(at: 10, as: UInt8.self)! ^ 0x01, at: 10)
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 262_144, digests: settings)
        #expect(throws: ISCSIFrameDecoder.FramingError.headerDigestMismatch) { try decoder.decode(buffer: &corrupt) }
        var small = ISCSIFrameDecoder(maxDataSegmentLength: 8, digests: DigestSettings())
        var plain = ByteBuffer()
        ISCSIFrameEncoder.frame(Self.frames()[1], into: &plain)
        #expect(throws: ISCSIFrameDecoder.FramingError.dataSegmentTooLong(13)) { try small.decode(buffer: &plain) }
    }

    /// A received data segment is a view of the bytes the socket read, not a
    /// copy: the decoded Data-Out's segment starts at the received buffer's
    /// byte 48, and its typed form keeps the same bytes.
    @Test(arguments: [false, true])
    func aDecodedSegmentIsASliceOfTheReceivedBytes(digests: Bool) throws {
        let settings = DigestSettings()
        settings.enable(header: digests, data: digests)
        var sent = DataOut()
        sent.data = ByteBuffer(bytes: (0..<8192).map { UInt8(truncatingIfNeeded: $0 * 7) })
        var frame = sent.frame
        (frame.headerDigest, frame.dataDigest) = (digests, digests)
        var received = ByteBuffer()
        ISCSIFrameEncoder.frame(frame, into: &received)
        let segmentAt = received.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) + 48 }
        let headerDigest = digests ? 4 : 0
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 262_144, digests: settings)
        let decoded = try #require(try decoder.decode(buffer: &received))
        let typed = DataOut(decoded)
        #expect(typed.data == sent.data)
        #expect(
            typed.data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == segmentAt + UInt(headerDigest))
        #expect(received.readableBytes == 0)
    }

    /// Every kind, with every field set to something random, survives a trip
    /// through its frame.
    @Test func everyTypedPDUReadsBackWhatWasWritten() {
        var rng = SeededRandom(seed: 0x7D0)
        func u32() -> UInt32 { UInt32.random(in: 0...UInt32.max, using: &rng) }
        func u16() -> UInt16 { UInt16.random(in: 0...UInt16.max, using: &rng) }
        func flag() -> Bool { Bool.random(using: &rng) }
        for _ in 0..<200 {
            let lun = rng.bytes(8)
            var command = SCSICommand()
            (command.immediate, command.final, command.read, command.write) = (flag(), flag(), flag(), flag())
            command.attribute = UInt8.random(in: 0...7, using: &rng)
            (command.lun, command.tag, command.expectedLength, command.cmdSN, command.expStatSN) = (
                lun, u32(), u32(), u32(), u32()
            )
            (command.cdb, command.data) = (
                rng.bytes(16), ByteBuffer(bytes: rng.bytes(Int.random(in: 0...64, using: &rng)))
            )
            var response = SCSIResponse()
            (response.response, response.status, response.tag, response.residual) = (
                UInt8.random(in: 0...255, using: &rng), 2, u32(), u32()
            )
            (response.overflow, response.underflow, response.sense) = (flag(), flag(), rng.bytes(18))
            var dataOut = DataOut()
            (dataOut.final, dataOut.lun, dataOut.tag, dataOut.transferTag, dataOut.expStatSN) = (
                flag(), lun, u32(), u32(), u32()
            )
            (dataOut.dataSN, dataOut.offset, dataOut.data) = (u32(), u32(), ByteBuffer(bytes: rng.bytes(32)))
            var dataIn = DataIn()
            (dataIn.final, dataIn.carriesStatus, dataIn.status, dataIn.overflow, dataIn.underflow) = (
                flag(), true, 0, flag(), flag()
            )
            (dataIn.residual, dataIn.lun, dataIn.tag, dataIn.dataSN, dataIn.offset, dataIn.data) = (
                u32(), lun, u32(), u32(), u32(), ByteBuffer(bytes: rng.bytes(40))
            )
            var r2t = R2T()
            (r2t.lun, r2t.tag, r2t.transferTag, r2t.r2tSN, r2t.offset, r2t.length) = (
                lun, u32(), u32(), u32(), u32(), u32()
            )
            var login = LoginRequest()
            (login.transit, login.continues, login.currentStage, login.nextStage) = (
                flag(), flag(), UInt8.random(in: 0...3, using: &rng), 3
            )
            (login.versionMax, login.versionMin, login.isid, login.tsih, login.tag, login.cid) = (
                0, 0, rng.bytes(6), u16(), u32(), u16()
            )
            (login.cmdSN, login.expStatSN, login.data) = (u32(), u32(), Array("InitiatorName=iqn.x\0".utf8))
            var loginResponse = LoginResponse(answering: login, transit: true, nextStage: 1)
            (loginResponse.statusClass, loginResponse.statusDetail, loginResponse.data) = (2, 7, rng.bytes(8))
            var text = TextRequest()
            (text.immediate, text.final, text.continues, text.lun, text.tag, text.transferTag) = (
                flag(), flag(), flag(), lun, u32(), u32()
            )
            (text.cmdSN, text.expStatSN, text.data) = (u32(), u32(), rng.bytes(12))
            var textResponse = TextResponse()
            (
                textResponse.final, textResponse.continues, textResponse.tag, textResponse.transferTag,
                textResponse.data
            ) = (flag(), flag(), u32(), u32(), rng.bytes(9))
            var logout = LogoutRequest()
            (logout.immediate, logout.reason, logout.tag, logout.cid, logout.cmdSN, logout.expStatSN) = (
                flag(), 1, u32(), u16(), u32(), u32()
            )
            var logoutResponse = LogoutResponse()
            (logoutResponse.response, logoutResponse.tag, logoutResponse.time2Wait, logoutResponse.time2Retain) = (
                1, u32(), u16(), u16()
            )
            var nopOut = NOPOut()
            (
                nopOut.immediate, nopOut.lun, nopOut.tag, nopOut.transferTag, nopOut.cmdSN, nopOut.expStatSN,
                nopOut.data
            ) =
                (flag(), lun, u32(), u32(), u32(), u32(), rng.bytes(5))
            var nopIn = NOPIn()
            (nopIn.lun, nopIn.tag, nopIn.transferTag, nopIn.data) = (lun, u32(), u32(), rng.bytes(7))
            var tmf = TaskManagementRequest()
            (tmf.immediate, tmf.function, tmf.lun, tmf.tag, tmf.referencedTag) = (
                flag(), UInt8.random(in: 1...8, using: &rng), lun, u32(), u32()
            )
            (tmf.cmdSN, tmf.expStatSN, tmf.refCmdSN, tmf.expDataSN) = (u32(), u32(), u32(), u32())
            var tmfResponse = TaskManagementResponse()
            (tmfResponse.response, tmfResponse.tag) = (5, u32())
            var async = AsyncMessage()
            (async.lun, async.event, async.vendorCode, async.parameter1, async.parameter2, async.parameter3) = (
                lun, 1, 0, u16(), u16(), u16()
            )
            let reject = Reject(reason: 0x09, rejecting: command.frame)
            var snack = SNACKRequest()
            (snack.type, snack.lun, snack.tag, snack.transferTag, snack.expStatSN, snack.begRun, snack.runLength) =
                (UInt8.random(in: 0...3, using: &rng), lun, u32(), u32(), u32(), u32(), u32())
            let all: [ISCSIPDU] = [
                .scsiCommand(command), .scsiResponse(response), .dataOut(dataOut), .dataIn(dataIn), .r2t(r2t),
                .loginRequest(login),
                .loginResponse(loginResponse), .textRequest(text), .textResponse(textResponse), .logoutRequest(logout),
                .logoutResponse(logoutResponse),
                .nopOut(nopOut), .nopIn(nopIn), .taskManagementRequest(tmf), .taskManagementResponse(tmfResponse),
                .asyncMessage(async),
                .reject(reject), .snackRequest(snack),
            ]
            let digests = DigestSettings()
            let digested = flag()
            digests.enable(header: digested, data: digested)
            for pdu in all {
                // Through the wire format too: written, then read back (digests on or off).
                var bytes = ByteBuffer()
                let written = bytes.writeISCSIPDU(pdu, headerDigest: digested, dataDigest: digested)
                #expect(written == bytes.readableBytes)
                let read = try? bytes.readISCSIPDU(maxDataSegmentLength: 1 << 20, digests: digests)
                #expect(read == pdu, "\(pdu)")
                #expect(bytes.readableBytes == 0)
            }
        }
    }
}
