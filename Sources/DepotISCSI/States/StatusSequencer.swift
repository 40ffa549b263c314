/// StatSN (RFC 7143 §4.2.2.2): every status-bearing PDU of a connection takes
/// the next number, and they leave in that order. The sequencer lives in the
/// connection's state machine, on its event loop: the PDU is stamped and
/// written in the same turn of the loop, so stamping order is wire order.
struct StatusSequencer {
    /// The StatSN the next status-bearing PDU carries.
    private(set) var next: UInt32

    init(expStatSN: UInt32) {
        next = expStatSN
    }

    /// How a PDU's sequence fields are filled.
    enum Stamp {
        /// A status-bearing PDU: StatSN assigned and advanced.
        case status
        /// R2T, NOP-In ping: StatSN is the next one, not advanced (§11.8.3, §11.19).
        case peek
        /// Data-In without status: ExpCmdSN and MaxCmdSN only (§11.7.4).
        case window
    }

    /// The StatSN field for a PDU stamped `stamp`, advancing for status; nil for `.window`.
    mutating func take(_ stamp: Stamp) -> UInt32? {
        switch stamp {
        case .status:
            defer { next &+= 1 }
            return next
        case .peek:
            return next
        case .window:
            return nil
        }
    }
}
