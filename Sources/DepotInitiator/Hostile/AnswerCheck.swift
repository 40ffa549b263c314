import DepotSCSI
import DepotISCSI

/// Whether a PDU from the target is well formed (RFC 7143 §11): the
/// property every hostile test asserts of every answer. nil when it is;
/// otherwise what is wrong.
public enum AnswerCheck {
    /// SCSI status codes a target may return (SAM-5 §5.3.1).
    static let statuses: Set<UInt8> = [0x00, 0x02, 0x08, 0x18, 0x28, 0x30, 0x40]

    public static func problem(
        _ pdu: ISCSIFrame, maxRecvDataSegmentLength: Int = 262_144, maxBurstLength: Int = 1 << 20
    ) -> String? {
        let flags = pdu.flags
        if pdu.dataSegmentLength > maxRecvDataSegmentLength {
            return "data segment of \(pdu.dataSegmentLength) bytes beyond MaxRecvDataSegmentLength"
        }
        switch pdu.opcodeByte {
        case 0x21:  // SCSI Response (§11.4)
            guard flags & 0x80 != 0 else { return "SCSI Response without F" }
            guard flags & 0x06 != 0x06 else { return "SCSI Response with both O and U" }
            guard pdu.bhs[2] <= 1 else { return "SCSI Response code \(pdu.bhs[2])" }
            guard statuses.contains(pdu.bhs[3]) else { return "SCSI status \(pdu.bhs[3])" }
            if !pdu.data.isEmpty {
                guard pdu.data.count >= 2 else { return "sense data shorter than its length field" }
                let senseLength = Int(pdu.data.u16(at: 0))
                guard pdu.data.count >= 2 + senseLength else { return "sense length \(senseLength) beyond the segment" }
                if senseLength > 0 {
                    let code = pdu.data[2] & 0x7F
                    guard [0x70, 0x71, 0x72, 0x73].contains(code) else { return "sense response code \(code)" }
                }
            }
            if pdu.bhs[3] == 0x02, pdu.data.count < 4 { return "CHECK CONDITION without sense data" }
        case 0x25:  // SCSI Data-In (§11.7)
            if flags & 0x01 != 0 {
                guard flags & 0x80 != 0 else { return "Data-In with S but not F" }
                guard flags & 0x06 != 0x06 else { return "Data-In with both O and U" }
                guard statuses.contains(pdu.bhs[3]) else { return "Data-In status \(pdu.bhs[3])" }
            } else if flags & 0x06 != 0 {
                return "Data-In with a residual but no status"
            }
        case 0x31:  // R2T (§11.8)
            let length = Int(pdu.u32(44))
            guard length > 0, length <= maxBurstLength else { return "R2T for \(length) bytes" }
            guard pdu.u32(20) != 0xFFFF_FFFF else { return "R2T with the reserved target transfer tag" }
        case 0x3F:  // Reject (§11.17)
            guard pdu.data.count == 48 else { return "Reject carrying \(pdu.data.count) bytes, not the 48-byte header" }
            guard (0x02...0x0C).contains(pdu.bhs[2]) else { return "Reject reason \(pdu.bhs[2])" }
        case 0x22:  // Task Management Function Response (§11.6)
            guard [0, 1, 2, 3, 4, 5, 6, 255].contains(pdu.bhs[2]) else { return "TMF response \(pdu.bhs[2])" }
        case 0x20, 0x23, 0x24, 0x26, 0x32:
            break
        default:
            return "opcode \(pdu.opcodeByte) is no target opcode"
        }
        return nil
    }
}
