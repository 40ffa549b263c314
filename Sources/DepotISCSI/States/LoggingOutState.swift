import DepotSCSI

/// After a Logout Request (RFC 7143 §11.14): the initiator must not send new
/// requests on the closing connection. Commands that were already running
/// finish and answer before the Logout Response; anything new is refused
/// with Reject, protocol error (04h), and never runs. A NOP-Out answering a
/// ping (ITT FFFFFFFFh) is ignored.
struct LoggingOutState {
    let nexus: ITNexus

    func receive(_ pdu: ISCSIFrame) -> ConnectionStateMachine.Action {
        if pdu.opcode == .nopOut, pdu.initiatorTaskTag == 0xFFFF_FFFF { return .none }
        return .reject(pdu, reason: 0x04)
    }
}
