@testable import DepotISCSI
import NIOCore

/// The iSCSI parsers a peer reaches before and after login.
enum ISCSIFuzzTargets {
    /// A byte stream from an initiator (RFC 7143 §11): framed with or
    /// without digests (first byte), each frame decoded to its PDU and fed
    /// to the connection state machine as the connection would, login
    /// steps ended by the next byte (stay, operational, full feature, refused).
    static func frames(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let digests = DigestSettings()
        digests.enable(header: mode & 1 != 0, data: mode & 2 != 0)
        var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 262_144, digests: digests)
        var machine = ConnectionStateMachine(queueDepth: 1 + Int(mode >> 4))
        var buffer = ByteBuffer(bytes: input.rest())
        var outcomes = FuzzInput(data.reversed())
        while true {
            let frame: ISCSIFrame
            do {
                guard let next = try decoder.decode(buffer: &buffer) else { break }
                frame = next
            } catch {
                return  // the connection drops: a framing error ends it (§7.12)
            }
            precondition(frame.bhs.count == 48)
            let declared = Int(frame.bhs[5]) << 16 | Int(frame.bhs[6]) << 8 | Int(frame.bhs[7])
            precondition(frame.dataSegmentLength == declared && frame.ahs.count == Int(frame.bhs[4]) * 4)
            _ = String(describing: ISCSIPDU(frame))
            let action: ConnectionStateMachine.Action
            do { action = try machine.receive(frame) } catch { return }
            if case .negotiate(let login) = action {
                loginKeys(login.data)
                switch outcomes.byte() % 4 {
                case 0: machine.loginStepEnded(.stay)
                case 1: machine.loginStepEnded(.operational)
                case 2: machine.loginStepEnded(.fullFeature(nexus: .init("fuzz")))
                default: machine.loginStepEnded(.refused)
                }
            }
            if case .deliver(let deliveries) = action {
                for d in deliveries {
                    _ = String(describing: ISCSIPDU(d.pdu))
                    if d.pdu.opcode == .scsiCommand {
                        machine.windowedTaskStarted()
                        machine.windowedTaskEnded()
                    }
                }
            }
            _ = machine.releaseHeld()
        }
    }

    /// A Login or Text data segment: key=value pairs (§6.1) and the
    /// operational keys' answers (§13); negotiated values stay in range.
    static func loginKeys(_ data: [UInt8]) {
        var params = NegotiatedParameters()
        for (key, value) in TextKeys.parse(data) {
            precondition(!key.utf8.contains(0) && !value.utf8.contains(0))
            if let answer = params.answer(key, value) { precondition(!answer.isEmpty) }
        }
        precondition((512...NegotiatedParameters.targetMaxBurstLength).contains(params.maxBurstLength))
        precondition((512...NegotiatedParameters.targetFirstBurstLength).contains(params.firstBurstLength))
        precondition((512...16_777_215).contains(params.initiatorMaxRecvDataSegmentLength))
    }

    /// CHAP's values from a login (§12.1.3): CHAP_C/CHAP_R binary values
    /// (hex or base64, bounded), the identifier, the response computed on them.
    static func chap(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        for (key, value) in TextKeys.parse(data) + [("CHAP_R", text)] {
            switch key {
            case "CHAP_I":
                _ = UInt8(value)
            case "CHAP_C", "CHAP_R":
                guard value.utf8.count <= CHAP.maxValueBytes * 2 + 2, let bytes = CHAP.decode(value) else { continue }
                precondition(bytes.count <= value.utf8.count)
                let response = CHAP.response(id: UInt8(truncatingIfNeeded: bytes.count), secret: "s", challenge: bytes)
                precondition(response.count == 16)
                _ = CHAP.constantTimeEqual(bytes, response)
                precondition(bytes.isEmpty || CHAP.decode(CHAP.hex(bytes)) == bytes)
            default:
                continue
            }
        }
    }
}
