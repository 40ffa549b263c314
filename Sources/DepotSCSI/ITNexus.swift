/// An I_T nexus (SAM-5 §4.6.2): the initiator port — iSCSI name and ISID
/// (RFC 7143 §4.4.2: "iqn,i,0xISID") — and the target. The transport names it
/// once at login; the SCSI core keys reservations, unit attentions and copy
/// results by it. Names and ISIDs compare case-insensitively (they are
/// stored lowercased); `name` is the textual form persistent reservations
/// and logs use.
public struct ITNexus: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let initiator: String
    public let isid: String
    public let target: String

    public init(initiator: String, isid: String, target: String) {
        self.initiator = initiator.lowercased()
        self.isid = isid.lowercased()
        self.target = target
    }

    /// Parses `name` ("iqn,i,0xISID|target"); a string without the port
    /// separator is an initiator name with an empty ISID (tests).
    public init(_ name: String) {
        let halves = name.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        let port = halves.first.map(String.init) ?? ""
        let target = halves.count > 1 ? String(halves[1]) : ""
        if let range = port.range(of: ",i,0x", options: .caseInsensitive) {
            self.init(
                initiator: String(port[..<range.lowerBound]), isid: String(port[range.upperBound...]), target: target)
        } else {
            self.init(initiator: port, isid: "", target: target)
        }
    }

    public init(stringLiteral name: String) { self.init(name) }

    /// No nexus (a command run outside any session: tests, internal work).
    public static let none = ITNexus(initiator: "", isid: "", target: "")

    public var name: String { "\(initiator),i,0x\(isid)|\(target)" }
    public var description: String { name }
}
