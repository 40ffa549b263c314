/// Operational parameters a connection settles at login (RFC 7143 §13), and
/// the target's answer to each key an initiator offers.
struct NegotiatedParameters: Sendable {
    /// What the initiator can receive per PDU: Data-In is cut to this.
    var initiatorMaxRecvDataSegmentLength = 8192
    var maxBurstLength = 262_144
    var firstBurstLength = 65_536
    var immediateData = true
    var initialR2T = true
    var headerDigest = false
    var dataDigest = false

    /// What we receive per PDU (declared to the initiator).
    static let targetMaxRecvDataSegmentLength = 262_144
    static let targetMaxBurstLength = 1_048_576
    static let targetFirstBurstLength = 262_144

    /// Answers one offered key; nil when the key needs no answer.
    mutating func answer(_ key: String, _ value: String) -> String? {
        func number() -> Int? { Int(value) }
        switch key {
        case "HeaderDigest", "DataDigest":
            // The first value of the initiator's list that we support wins (RFC 7143 §6.2.1, §13.1).
            guard let choice = value.split(separator: ",").first(where: { $0 == "None" || $0 == "CRC32C" }) else {
                return "Reject"
            }
            if key == "HeaderDigest" { headerDigest = choice == "CRC32C" } else { dataDigest = choice == "CRC32C" }
            return String(choice)
        case "MaxRecvDataSegmentLength":
            if let n = number(), n >= 512 { initiatorMaxRecvDataSegmentLength = min(n, 16_777_215) }
            return nil  // declarative; ours is sent unasked
        case "MaxBurstLength":
            guard let n = number(), n >= 512 else { return "Reject" }
            maxBurstLength = min(n, Self.targetMaxBurstLength)
            return "\(maxBurstLength)"
        case "FirstBurstLength":
            guard let n = number(), n >= 512 else { return "Reject" }
            firstBurstLength = min(n, Self.targetFirstBurstLength)
            return "\(firstBurstLength)"
        case "InitialR2T":
            // OR (RFC 7143 §13.10): we ask for R2T before unsolicited data.
            initialR2T = true
            return "Yes"
        case "ImmediateData":
            // AND (§13.11)
            immediateData = value == "Yes"
            return immediateData ? "Yes" : "No"
        case "MaxOutstandingR2T": return "1"
        case "MaxConnections": return "1"
        case "ErrorRecoveryLevel": return "0"
        case "DataPDUInOrder", "DataSequenceInOrder": return "Yes"
        case "DefaultTime2Wait": return number().map { "\(max($0, 2))" } ?? "Reject"
        case "DefaultTime2Retain": return "0"
        case "IFMarker", "OFMarker": return "No"
        case "InitiatorName", "InitiatorAlias", "TargetName", "SessionType", "AuthMethod": return nil
        default: return "NotUnderstood"
        }
    }
}
