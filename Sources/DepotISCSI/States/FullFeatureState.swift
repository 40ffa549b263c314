import DepotSCSI

/// The full feature phase (RFC 7143 §4.2.2): non-immediate commands are
/// delivered in CmdSN order and only inside the window; immediate commands
/// and Data-Out are delivered as they come.
struct FullFeatureState {
    /// The I_T nexus this session's commands run for (SAM-5 §4.6.2), named
    /// before the first full feature PDU can be decoded.
    let nexus: ITNexus

    func receive(_ pdu: ISCSIFrame, window: inout CommandWindow) -> ConnectionStateMachine.Action {
        // Data-Out carries no CmdSN; an immediate command is delivered at once and
        // does not advance ExpCmdSN (§3.2.2.1).
        guard pdu.opcode != .dataOut, pdu.opcode != .snackRequest, !pdu.immediate else {
            return .deliver([.init(pdu: pdu, expCmdSN: window.expCmdSN)])
        }
        let before = window.expCmdSN
        switch window.admit(pdu) {
        case .ignored, .held:
            // Outside [ExpCmdSN, MaxCmdSN]: silently ignored (§4.2.2.1); ahead of a gap: held.
            return .none
        case .accepted:
            return .deliver([.init(pdu: pdu, expCmdSN: before)] + Self.releaseHeld(&window))
        }
    }

    /// The held commands whose turn has come, each accepted in order, with
    /// ExpCmdSN as it was before it.
    static func releaseHeld(_ window: inout CommandWindow) -> [ConnectionStateMachine.Delivery] {
        var out: [ConnectionStateMachine.Delivery] = []
        while true {
            let before = window.expCmdSN
            guard let next = window.nextHeld() else { return out }
            out.append(.init(pdu: next, expCmdSN: before))
        }
    }
}
