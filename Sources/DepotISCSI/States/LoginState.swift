/// The login phase's security and operational stages (RFC 7143 §6.3): one
/// Login Request at a time is negotiated; anything but a Login Request
/// before the full feature phase ends the connection.
struct LoginState {
    /// A Login Request is being negotiated; its answer is not yet sent.
    private(set) var stepInProgress = false

    mutating func receive(_ pdu: ISCSIFrame) throws(ConnectionStateMachine.Violation) -> ConnectionStateMachine.Action {
        // Only Login PDUs are allowed before the full feature phase (RFC 7143 §6.3);
        // "the target MUST" drop the connection otherwise.
        guard pdu.opcode == .loginRequest else {
            throw ConnectionStateMachine.Violation(description: "a \(ConnectionStateMachine.name(pdu)) during login")
        }
        // The connection decodes nothing while a step is negotiated.
        precondition(!stepInProgress, "a PDU was decoded while a login step was being negotiated")
        stepInProgress = true
        return .negotiate(pdu)
    }

    mutating func stepEnded() {
        precondition(stepInProgress, "a login step ended that never started")
        stepInProgress = false
    }
}
