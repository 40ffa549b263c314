/// The command window of a session (RFC 7143 §4.2.2.1): ExpCmdSN, MaxCmdSN,
/// and the non-immediate commands that arrived ahead of a CmdSN gap.
/// Serial-number arithmetic (RFC 1982) throughout: CmdSN wraps.
struct CommandWindow {
    /// Commands a session may have queued at once.
    let depth: Int
    /// The next CmdSN expected.
    private(set) var expCmdSN: UInt32
    /// Non-immediate commands accepted and not yet answered: they close the
    /// window, so at most `depth` are queued.
    private(set) var inFlight = 0
    /// Commands ahead of a gap, by CmdSN; delivered once the gap is filled.
    private var held: [UInt32: ISCSIFrame] = [:]

    init(expCmdSN: UInt32, depth: Int) {
        precondition(depth >= 1, "a window holds at least one command")
        self.expCmdSN = expCmdSN
        self.depth = depth
    }

    /// The last CmdSN the initiator may send now.
    var maxCmdSN: UInt32 { expCmdSN &+ UInt32(depth - 1) &- UInt32(min(inFlight, depth)) }

    var heldCount: Int { held.count }

    /// Whether `cmdSN` lies in [ExpCmdSN, MaxCmdSN].
    func contains(_ cmdSN: UInt32) -> Bool {
        let offset = Int64(Int32(bitPattern: cmdSN &- expCmdSN))
        return offset >= 0 && offset < Int64(depth - min(inFlight, depth))
    }

    /// Where a non-immediate command goes: accepted now (it is ExpCmdSN, which
    /// advances), held for a gap, or ignored (outside the window: §4.2.2.1
    /// says it is silently ignored, as is a second copy of a held CmdSN).
    enum Admission: Equatable { case accepted, held, ignored }

    mutating func admit(_ pdu: ISCSIFrame) -> Admission {
        let cmdSN = pdu.cmdSN
        guard contains(cmdSN) else { return .ignored }
        guard cmdSN == expCmdSN else {
            guard held[cmdSN] == nil else { return .ignored }
            held[cmdSN] = pdu
            return .held
        }
        expCmdSN &+= 1
        return .accepted
    }

    /// Accepts the fast lane's command, which is ExpCmdSN (checked by `contains` and the caller).
    mutating func accept(cmdSN: UInt32) {
        precondition(cmdSN == expCmdSN, "the fast lane serves only the next command in order")
        expCmdSN &+= 1
    }

    /// The held command that is next in order now, accepted; nil when the gap is still open.
    mutating func nextHeld() -> ISCSIFrame? {
        guard let next = held.removeValue(forKey: expCmdSN) else { return nil }
        expCmdSN &+= 1
        return next
    }

    /// A windowed task starts (the window closes by one) or ends (it reopens).
    mutating func taskStarted() { inFlight += 1 }
    mutating func taskEnded() {
        precondition(inFlight > 0, "a task ended that never started")
        inFlight -= 1
    }
}
