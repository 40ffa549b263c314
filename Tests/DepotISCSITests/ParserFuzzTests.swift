@testable import DepotISCSI
import DepotSCSI
import DepotInitiator
import NIOCore
import Testing

/// Everything that parses peer bytes, fed seeded random input: the frame
/// decoder (with and without digests), text keys, operational key answers,
/// CHAP's binary values, task management selection. Nothing traps; what
/// comes out is consistent with what went in.
@Suite struct ParserFuzzTests {
    @Test(arguments: [(false, false), (true, false), (true, true)])
    func frameDecoderTakesRandomStreams(header: Bool, data: Bool) throws {
        var rng = SeededRandom(seed: 0xF4A3E + (header ? 1 : 0) + (data ? 2 : 0))
        let digests = DigestSettings()
        digests.enable(header: header, data: data)
        var pdus = 0
        var errors = 0
        for _ in 0..<3000 {
            var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 262_144, digests: digests)
            var bytes = rng.bytes(Int.random(in: 0...4096, using: &rng))
            // Mostly plausible headers: small AHS and data lengths, so that some frame.
            if bytes.count >= 48, !rng.oneIn(4) {
                bytes[4] = rng.oneIn(3) ? UInt8.random(in: 0...4, using: &rng) : 0
                bytes[5] = 0
                bytes[6] = rng.oneIn(2) ? 0 : UInt8.random(in: 0...15, using: &rng)
            }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                while let pdu = try decoder.decode(buffer: &buffer) {
                    pdus += 1
                    #expect(pdu.bhs.count == 48)
                    let declared = Int(pdu.bhs[5]) << 16 | Int(pdu.bhs[6]) << 8 | Int(pdu.bhs[7])
                    #expect(pdu.data.count == declared && pdu.ahs.count == Int(pdu.bhs[4]) * 4)
                }
                #expect(buffer.readableBytes <= bytes.count)
            } catch {
                errors += 1
            }
        }
        #expect(pdus + errors > 0)
    }

    @Test func textKeysAndNegotiationTakeRandomBytes() {
        var rng = SeededRandom(seed: 0x7E47)
        for _ in 0..<5000 {
            let pairs = TextKeys.parse(
                rng.oneIn(2) ? rng.bytes(Int.random(in: 0...512, using: &rng)) : HostilePDUs.textKeys(using: &rng))
            var params = NegotiatedParameters()
            for (key, value) in pairs {
                #expect(!key.utf8.contains(0) && !value.utf8.contains(0))
                if let answer = params.answer(key, value) { #expect(!answer.isEmpty) }
            }
            #expect((512...NegotiatedParameters.targetMaxBurstLength).contains(params.maxBurstLength))
            #expect((512...NegotiatedParameters.targetFirstBurstLength).contains(params.firstBurstLength))
            #expect((512...16_777_215).contains(params.initiatorMaxRecvDataSegmentLength))
        }
        // The numeric edges by name: no value may trap or escape its range.
        var params = NegotiatedParameters()
        for value in [
            "-1", "0", "511", "9223372036854775807", "9223372036854775808", "18446744073709551616", "", "1e9", " 512",
        ] {
            _ = params.answer("MaxBurstLength", value)
            _ = params.answer("FirstBurstLength", value)
            _ = params.answer("MaxRecvDataSegmentLength", value)
            _ = params.answer("DefaultTime2Wait", value)
        }
        #expect((512...NegotiatedParameters.targetMaxBurstLength).contains(params.maxBurstLength))
    }

    @Test func chapValuesTakeRandomText() {
        var rng = SeededRandom(seed: 0xC4A9)
        let alphabet = Array("0xXbB=+/AZaz09fgG".utf8)
        for _ in 0..<5000 {
            let text = String(
                decoding: (0..<Int.random(in: 0...64, using: &rng)).map { _ in rng.pick(alphabet) }, as: UTF8.self)
            if let bytes = CHAP.decode(text) { #expect(bytes.count <= text.utf8.count) }
        }
    }

    @Test func taskManagementSelectionTakesRandomRequests() {
        var rng = SeededRandom(seed: 0x7A5C)
        for _ in 0..<5000 {
            let pdu = ISCSIFrame(bhs: rng.bytes(48))
            let outcome = TaskManagement.select(
                TaskManagementRequest(pdu), tasks: [:], expCmdSN: UInt32.random(in: 0...UInt32.max, using: &rng))
            #expect(outcome.tasks.isEmpty)
            #expect(ReportLUNs.number(pdu.lun).map { $0 < 16384 } ?? true)
        }
    }
}
