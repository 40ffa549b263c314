import DepotSCSI

/// One iSCSI connection's protocol state (RFC 7143 §6 login phases, §4.2.2
/// sequencing, §11.14 logout) as a value the connection owns on its event
/// loop. PDUs go in through `receive(_:)`; what the connection must do comes
/// out as an `Action`. A peer's violation throws the error RFC 7143 names;
/// a call the connection should never make is a `preconditionFailure`.
///
/// Nothing here touches a socket, a task or a lock, so the machine is driven
/// with PDUs alone in tests (ConnectionStateMachineTests).
struct ConnectionStateMachine {
    /// One file per state under States/: what each phase knows.
    private enum State {
        /// Connected, no Login Request yet.
        case awaitingLogin
        /// Security negotiation stage (CSG 0).
        case security(LoginState)
        /// Operational negotiation stage (CSG 1).
        case operational(LoginState)
        /// Full feature phase: commands run.
        case fullFeature(FullFeatureState)
        /// A Logout Request was accepted; the Logout Response is the last PDU.
        case loggingOut(LoggingOutState)
        /// Nothing more is read or answered.
        case closed
    }

    private var state: State = .awaitingLogin
    /// StatSN, from the first Login Request's ExpStatSN on.
    private var sequencer = StatusSequencer(expStatSN: 0)
    /// The command window, from the first Login Request's CmdSN on.
    private var window: CommandWindow
    private let depth: Int

    init(queueDepth: Int) {
        depth = queueDepth
        window = CommandWindow(expCmdSN: 0, depth: queueDepth)
    }

    /// What the connection does with a PDU (or with the end of a login step).
    enum Action {
        /// Negotiate this Login Request (async work: the target's answer,
        /// CHAP, session reinstatement), then call `loginStepEnded`. No PDU
        /// after it may be decoded before that: its digests, and whether it
        /// belongs to the full feature phase, depend on the answer.
        case negotiate(ISCSIFrame)
        /// Handle these full feature PDUs in this order. `expCmdSN` is the
        /// value before the PDU was accepted (task management's RefCmdSN rule).
        case deliver([Delivery])
        /// Nothing to do: held for a CmdSN gap, or ignored as §4.2.2.1 says.
        case none
        /// Reject (§11.17) with this reason; the connection stays.
        case reject(ISCSIFrame, reason: UInt8)
    }

    struct Delivery {
        let pdu: ISCSIFrame
        let expCmdSN: UInt32
    }

    /// How a login step ended, as the negotiation decided and answered it.
    enum LoginOutcome {
        /// The response did not transit (more negotiation in this stage).
        case stay
        /// The response transits to the operational stage.
        case operational
        /// The final response: full feature phase, for this nexus.
        case fullFeature(nexus: ITNexus)
        /// The login was refused (status class 02h/03h sent): the connection ends.
        case refused
    }

    /// A peer's violation that ends the connection (RFC 7143 §6.3, §7.1).
    struct Violation: Error, Equatable, CustomStringConvertible {
        let description: String
    }

    // MARK: What the connection asks

    var isFullFeature: Bool {
        switch state {
        case .fullFeature: return true
        case .awaitingLogin, .security, .operational, .loggingOut, .closed: return false
        }
    }

    /// While a login step is being negotiated, no PDU may be decoded.
    var isNegotiating: Bool {
        switch state {
        case .security(let login), .operational(let login): return login.stepInProgress
        case .awaitingLogin, .fullFeature, .loggingOut, .closed: return false
        }
    }

    var isClosed: Bool {
        switch state {
        case .closed: return true
        case .awaitingLogin, .security, .operational, .fullFeature, .loggingOut: return false
        }
    }

    /// Past the final Login Response (full feature or logging out): digests
    /// apply to what is sent (RFC 7143 §13.1).
    var isPastLogin: Bool {
        switch state {
        case .fullFeature, .loggingOut: return true
        case .awaitingLogin, .security, .operational, .closed: return false
        }
    }

    /// The I_T nexus, once in full feature phase (or logging out of it).
    var nexus: ITNexus? {
        switch state {
        case .fullFeature(let full): return full.nexus
        case .loggingOut(let out): return out.nexus
        case .awaitingLogin, .security, .operational, .closed: return nil
        }
    }

    var expCmdSN: UInt32 { window.expCmdSN }
    var maxCmdSN: UInt32 { window.maxCmdSN }
    var statSN: UInt32 { sequencer.next }

    // MARK: PDUs in

    mutating func receive(_ pdu: ISCSIFrame) throws(Violation) -> Action {
        switch state {
        case .awaitingLogin:
            guard pdu.opcode == .loginRequest else {
                throw Violation(description: "a \(Self.name(pdu)) before any Login Request")
            }
            // The first Login Request sets the sequence numbers (RFC 7143 §11.12.8, §11.13.4).
            sequencer = StatusSequencer(expStatSN: pdu.expStatSN)
            window = CommandWindow(expCmdSN: pdu.cmdSN, depth: depth)
            var login = LoginState()
            let action = try login.receive(pdu)
            state = Self.stage(of: pdu) == 1 ? .operational(login) : .security(login)
            return action
        case .security(var login):
            let action = try login.receive(pdu)
            state = .security(login)
            return action
        case .operational(var login):
            let action = try login.receive(pdu)
            state = .operational(login)
            return action
        case .fullFeature(let full):
            let action = full.receive(pdu, window: &window)
            if case .deliver(let deliveries) = action, deliveries.contains(where: { $0.pdu.opcode == .logoutRequest }) {
                state = .loggingOut(LoggingOutState(nexus: full.nexus))
            }
            return action
        case .loggingOut(let out):
            return out.receive(pdu)
        case .closed:
            return .none
        }
    }

    /// The negotiation of the pending Login Request has been answered.
    mutating func loginStepEnded(_ outcome: LoginOutcome) {
        switch state {
        case .security(var login), .operational(var login):
            login.stepEnded()
            switch outcome {
            case .stay:
                state = Self.isOperational(state) ? .operational(login) : .security(login)
            case .operational:
                state = .operational(login)
            case .fullFeature(let nexus):
                state = .fullFeature(FullFeatureState(nexus: nexus))
            case .refused:
                state = .closed
            }
        case .closed:
            // The peer went away while the step was negotiated: nothing follows.
            return
        case .awaitingLogin, .fullFeature, .loggingOut:
            preconditionFailure("a login step ended outside the login phase")
        }
    }

    /// The connection is gone (peer closed, logout answered, fatal error).
    mutating func close() {
        state = .closed
    }

    // MARK: The fast lane and the tasks

    /// Whether the fast lane may serve the non-immediate command `cmdSN` now:
    /// full feature phase, next in order, inside the window.
    func admitsFastLane(cmdSN: UInt32) -> Bool {
        isFullFeature && cmdSN == window.expCmdSN && window.contains(cmdSN)
    }

    /// The fast lane serves `cmdSN` (after `admitsFastLane`).
    mutating func acceptFastLane(cmdSN: UInt32) {
        precondition(isFullFeature, "the fast lane runs only in full feature phase")
        window.accept(cmdSN: cmdSN)
    }

    /// Held commands whose turn has come (after the fast lane accepted one).
    mutating func releaseHeld() -> [Delivery] {
        guard isFullFeature else { return [] }
        return FullFeatureState.releaseHeld(&window)
    }

    mutating func windowedTaskStarted() { window.taskStarted() }
    mutating func windowedTaskEnded() { window.taskEnded() }

    // MARK: PDUs out

    /// Fills StatSN (as `stamp` says), ExpCmdSN and MaxCmdSN of a target PDU.
    mutating func stamp(_ pdu: inout ISCSIFrame, _ stamp: StatusSequencer.Stamp) {
        if let statSN = sequencer.take(stamp) { pdu.put32(statSN, 24) }
        pdu.put32(window.expCmdSN, 28)
        pdu.put32(window.maxCmdSN, 32)
    }

    /// StatSN, ExpCmdSN and MaxCmdSN for a status-bearing PDU the fast lane writes itself.
    mutating func stampStatus() -> (statSN: UInt32, expCmdSN: UInt32, maxCmdSN: UInt32) {
        (sequencer.take(.status)!, window.expCmdSN, window.maxCmdSN)
    }

    // MARK: Helpers

    static func stage(of login: ISCSIFrame) -> UInt8 { (login.flags >> 2) & 0x3 }

    private static func isOperational(_ state: State) -> Bool {
        switch state {
        case .operational: return true
        case .awaitingLogin, .security, .fullFeature, .loggingOut, .closed: return false
        }
    }

    static func name(_ pdu: ISCSIFrame) -> String {
        pdu.opcode.map { "\($0)" } ?? "PDU with opcode 0x\(String(pdu.opcodeByte, radix: 16))"
    }
}
