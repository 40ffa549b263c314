/// An iSCSI PDU by kind (RFC 7143 §11), every field named: what a target
/// reads from initiators, and what it sends. `ISCSIFrame` is the same PDU
/// as framed bytes: `ISCSIPDU(frame)` reads one, `.frame` writes it. The
/// sequence numbers of target PDUs (StatSN, ExpCmdSN, MaxCmdSN) are not
/// fields here: the connection's state machine stamps them on the frame as
/// it is sent.
public enum ISCSIPDU: Sendable, Equatable {
    // Initiator PDUs (RFC 7143 §11.1.1).
    case nopOut(NOPOut)
    case scsiCommand(SCSICommand)
    case taskManagementRequest(TaskManagementRequest)
    case loginRequest(LoginRequest)
    case textRequest(TextRequest)
    case dataOut(DataOut)
    case logoutRequest(LogoutRequest)
    case snackRequest(SNACKRequest)
    // Target PDUs (§11.1.2).
    case nopIn(NOPIn)
    case scsiResponse(SCSIResponse)
    case taskManagementResponse(TaskManagementResponse)
    case loginResponse(LoginResponse)
    case textResponse(TextResponse)
    case dataIn(DataIn)
    case logoutResponse(LogoutResponse)
    case r2t(R2T)
    case asyncMessage(AsyncMessage)
    case reject(Reject)
    /// An opcode RFC 7143 does not define (Reject, reason 05h: §11.17.1).
    case unknown(ISCSIFrame)

    public init(_ frame: ISCSIFrame) {
        switch frame.opcode {
        case .nopOut: self = .nopOut(NOPOut(frame))
        case .scsiCommand: self = .scsiCommand(SCSICommand(frame))
        case .taskManagementRequest: self = .taskManagementRequest(TaskManagementRequest(frame))
        case .loginRequest: self = .loginRequest(LoginRequest(frame))
        case .textRequest: self = .textRequest(TextRequest(frame))
        case .dataOut: self = .dataOut(DataOut(frame))
        case .logoutRequest: self = .logoutRequest(LogoutRequest(frame))
        case .snackRequest: self = .snackRequest(SNACKRequest(frame))
        case .nopIn: self = .nopIn(NOPIn(frame))
        case .scsiResponse: self = .scsiResponse(SCSIResponse(frame))
        case .taskManagementResponse: self = .taskManagementResponse(TaskManagementResponse(frame))
        case .loginResponse: self = .loginResponse(LoginResponse(frame))
        case .textResponse: self = .textResponse(TextResponse(frame))
        case .dataIn: self = .dataIn(DataIn(frame))
        case .logoutResponse: self = .logoutResponse(LogoutResponse(frame))
        case .r2t: self = .r2t(R2T(frame))
        case .asyncMessage: self = .asyncMessage(AsyncMessage(frame))
        case .reject: self = .reject(Reject(frame))
        case nil: self = .unknown(frame)
        }
    }

    /// The PDU as a frame (lengths are filled in when it is framed).
    public var frame: ISCSIFrame {
        switch self {
        case .nopOut(let p): return p.frame
        case .scsiCommand(let p): return p.frame
        case .taskManagementRequest(let p): return p.frame
        case .loginRequest(let p): return p.frame
        case .textRequest(let p): return p.frame
        case .dataOut(let p): return p.frame
        case .logoutRequest(let p): return p.frame
        case .snackRequest(let p): return p.frame
        case .nopIn(let p): return p.frame
        case .scsiResponse(let p): return p.frame
        case .taskManagementResponse(let p): return p.frame
        case .loginResponse(let p): return p.frame
        case .textResponse(let p): return p.frame
        case .dataIn(let p): return p.frame
        case .logoutResponse(let p): return p.frame
        case .r2t(let p): return p.frame
        case .asyncMessage(let p): return p.frame
        case .reject(let p): return p.frame
        case .unknown(let frame): return frame
        }
    }
}

extension ISCSIFrame {
    /// A frame of `opcode` with the F bit and every other field zero.
    init(_ opcode: Opcode, immediate: Bool = false, flags: UInt8 = 0x80) {
        self.init(opcode: opcode)
        if immediate { bhs[0] |= 0x40 }
        bhs[1] = flags
    }
}
