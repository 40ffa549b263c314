import DepotISCSI

/// The initiator's side of a session as a value (RFC 7143 §4.2.2, §6): the
/// login stage it is in, CmdSN it sends, the StatSN it expects and the
/// window the target grants. It builds the initiator's PDUs and checks every
/// target PDU against what the target may send now, throwing on a
/// violation. Tests drive it against the target's `ConnectionStateMachine`
/// with PDUs alone; `RawInitiator` keeps free-form counters of its own, since
/// the hostile-input tools it serves must be able to break every rule.
public struct InitiatorSession: Sendable {
    public enum Phase: Sendable, Equatable { case security, operational, fullFeature, loggedOut }

    public private(set) var phase: Phase = .security
    public private(set) var cmdSN: UInt32
    /// The StatSN the next status-bearing PDU must carry; nil before the first.
    public private(set) var expStatSN: UInt32?
    public private(set) var expCmdSN: UInt32
    public private(set) var maxCmdSN: UInt32
    public let isid: [UInt8]
    private var nextTag: UInt32 = 1

    public struct Violation: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(isid: [UInt8] = [0x80, 0x12, 0x34, 0x56, 0x78, 0x9A], cmdSN: UInt32 = 1) {
        self.isid = isid
        self.cmdSN = cmdSN
        expCmdSN = cmdSN
        maxCmdSN = cmdSN
    }

    /// Commands the target's window has room for now.
    public var windowRoom: Int {
        let room = Int64(Int32(bitPattern: maxCmdSN &- cmdSN)) + 1
        return room < 0 ? 0 : Int(room)
    }

    // MARK: PDUs out

    /// A Login Request from the current stage to `next` (transit when they differ).
    public func loginRequest(to next: UInt8, keys: [(String, String)]) -> LoginRequest {
        var request = LoginRequest()
        request.currentStage = phase == .operational ? 1 : 0
        request.nextStage = next
        request.transit = next != request.currentStage
        request.isid = isid
        request.cmdSN = cmdSN
        request.expStatSN = expStatSN ?? 0
        request.data = TextKeys.encode(keys)
        return request
    }

    /// A non-immediate SCSI Command taking the next CmdSN and tag.
    public mutating func command(_ cdb: [UInt8], read: Int = 0, write: Int = 0) -> SCSICommand {
        var command = SCSICommand()
        command.read = read > 0
        command.write = write > 0
        command.tag = nextTag
        nextTag = nextTag &+ 1 == 0xFFFF_FFFF ? 1 : nextTag &+ 1
        command.expectedLength = UInt32(max(read, write))
        command.cmdSN = cmdSN
        cmdSN &+= 1
        command.expStatSN = expStatSN ?? 0
        command.cdb = cdb
        return command
    }

    // MARK: PDUs in

    /// Checks one target PDU and takes its sequence numbers.
    public mutating func receive(_ frame: ISCSIFrame) throws(Violation) -> ISCSIPDU {
        let pdu = ISCSIPDU(frame)
        switch pdu {
        case .loginResponse(let response):
            guard phase == .security || phase == .operational else {
                throw Violation(description: "Login Response in \(phase)")
            }
            guard response.statusClass == 0 else {
                phase = .loggedOut
                return pdu
            }
            try takeStatus(frame)
            if response.transit {
                switch response.nextStage {
                case 1: phase = .operational
                case 3: phase = .fullFeature
                default: throw Violation(description: "Login Response transits to stage \(response.nextStage)")
                }
            }
        case .scsiResponse, .taskManagementResponse, .textResponse, .logoutResponse, .asyncMessage, .reject:
            guard phase == .fullFeature else {
                throw Violation(description: "\(frame.opcode.map { "\($0)" } ?? "?") before full feature phase")
            }
            try takeStatus(frame)
            if case .logoutResponse = pdu { phase = .loggedOut }
        case .dataIn(let data):
            guard phase == .fullFeature else { throw Violation(description: "Data-In before full feature phase") }
            if data.carriesStatus { try takeStatus(frame) } else { try takeWindow(frame) }
        case .nopIn(let nop):
            guard phase == .fullFeature else { throw Violation(description: "NOP-In before full feature phase") }
            // A ping (ITT FFFFFFFFh) carries the next StatSN without taking it (§11.19.1).
            if nop.tag == 0xFFFF_FFFF { try peekStatus(frame) } else { try takeStatus(frame) }
        case .r2t:
            guard phase == .fullFeature else { throw Violation(description: "R2T before full feature phase") }
            try peekStatus(frame)
        case .nopOut, .scsiCommand, .taskManagementRequest, .loginRequest, .textRequest, .dataOut, .logoutRequest,
            .snackRequest, .unknown:
            throw Violation(description: "an initiator PDU (opcode \(frame.opcodeByte)) from the target")
        }
        return pdu
    }

    /// StatSN must be the next one (§4.2.2.2); the window fields are taken.
    private mutating func takeStatus(_ frame: ISCSIFrame) throws(Violation) {
        let statSN = frame.u32(24)
        if let expected = expStatSN, statSN != expected {
            throw Violation(description: "StatSN \(statSN), expected \(expected)")
        }
        expStatSN = statSN &+ 1
        try takeWindow(frame)
    }

    private mutating func peekStatus(_ frame: ISCSIFrame) throws(Violation) {
        let statSN = frame.u32(24)
        if let expected = expStatSN, statSN != expected {
            throw Violation(description: "StatSN \(statSN) in a PDU that does not take one, expected \(expected)")
        }
        try takeWindow(frame)
    }

    /// ExpCmdSN and MaxCmdSN (§4.2.2.1): ExpCmdSN never moves back, and a
    /// window is MaxCmdSN ≥ ExpCmdSN − 1; an older one is ignored.
    private mutating func takeWindow(_ frame: ISCSIFrame) throws(Violation) {
        guard phase == .fullFeature else { return }
        let exp = frame.u32(28)
        let max = frame.u32(32)
        guard Int32(bitPattern: max &- exp) >= -1 else {
            throw Violation(description: "MaxCmdSN \(max) below ExpCmdSN \(exp) − 1")
        }
        guard Int32(bitPattern: exp &- expCmdSN) >= 0 else { return }  // out of date (§4.2.2.1)
        guard Int32(bitPattern: cmdSN &- exp) >= 0 else {
            throw Violation(description: "ExpCmdSN \(exp) ahead of the next CmdSN \(cmdSN)")
        }
        expCmdSN = exp
        maxCmdSN = max
    }
}
