import DepotSCSI
import NIOCore

extension ISCSIConnection {
    /// Login phase (RFC 7143 §6.3): security stage with AuthMethod=None, then
    /// operational negotiation, then full feature phase.
    func login(_ pdu: ISCSIPDU, outbound: Outbound) async throws {
        guard pdu.opcode == .loginRequest else {
            // Only Login PDUs before the full feature phase (RFC 7143 §6.3): drop the connection.
            logger.warning("non-login PDU during login", metadata: ["opcode": "\(pdu.opcodeByte)"])
            throw Closing.loginFailed
        }
        let transit = pdu.flags & 0x80 != 0
        let csg = (pdu.flags >> 2) & 0x3
        var nsg = pdu.flags & 0x3
        let keys = TextKeys.parse(pdu.data)
        let first = initiatorName.isEmpty
        if first {
            statSN = pdu.u32(28)
            expCmdSN = pdu.u32(24)
            isid = Array(pdu.bhs[8..<14])
        }
        var answers: [(String, String)] = []

        func fail(_ detail: UInt8, _ why: String) async throws -> Never {
            logger.info("login refused", metadata: ["initiator": "\(initiatorName)", "target": "\(targetName ?? "-")", "why": "\(why)"])
            var r = response(pdu, transit: false, csg: csg, nsg: 0)
            r.bhs[36] = 0x02
            r.bhs[37] = detail
            stamp(&r, status: true)
            try await outbound.write(r)
            throw Closing.loginFailed
        }

        if pdu.flags & 0x40 != 0 { try await fail(0x00, "continued text in login is not supported") }
        if first {
            guard let name = keys.first(where: { $0.0 == "InitiatorName" })?.1, !name.isEmpty else {
                try await fail(0x07, "InitiatorName missing")
            }
            initiatorName = name
            let sessionType = keys.first(where: { $0.0 == "SessionType" })?.1 ?? "Normal"
            discovery = sessionType == "Discovery"
            if !discovery {
                guard let wanted = keys.first(where: { $0.0 == "TargetName" })?.1 else { try await fail(0x07, "TargetName missing") }
                // 02/03: target not found; 02/02: authorization failure (RFC 7143 §11.13.5).
                guard let target = directory.target(wanted) else { try await fail(0x03, "no target \(wanted)") }
                guard target.admits(initiatorName) else { try await fail(0x02, "initiator not in the ACL") }
                targetName = target.iqn
                answers.append(("TargetPortalGroupTag", "1"))
                if let alias = target.alias { answers.append(("TargetAlias", alias)) }
            }
            logger[metadataKey: "initiator"] = "\(initiatorName)"
            logger[metadataKey: "target"] = "\(targetName ?? "discovery")"
        }
        switch csg {
        case 0:
            if let methods = keys.first(where: { $0.0 == "AuthMethod" })?.1 {
                guard methods.split(separator: ",").contains("None") else { try await fail(0x01, "no acceptable AuthMethod") }
                answers.append(("AuthMethod", "None"))
            }
        case 1:
            for (key, value) in keys {
                if let answer = params.answer(key, value) { answers.append((key, answer)) }
            }
            if !sentOperationalDeclarations {
                answers.append(("MaxRecvDataSegmentLength", "\(NegotiatedParameters.targetMaxRecvDataSegmentLength)"))
                sentOperationalDeclarations = true
            }
        default:
            try await fail(0x00, "bad current stage \(csg)")
        }
        if transit && nsg == 2 { nsg = 1 }
        var r = response(pdu, transit: transit, csg: csg, nsg: transit ? nsg : 0)
        if transit && nsg == 3 { r.put16(tsih, 14) }
        r.data = TextKeys.encode(answers)
        stamp(&r, status: true)
        try await outbound.write(r)
        if transit && nsg == 3 {
            inFullFeature = true
            logger.info("session logged in", metadata: ["maxRecvDataSegmentLength": "\(params.initiatorMaxRecvDataSegmentLength)"])
        }
    }

    private func response(_ request: ISCSIPDU, transit: Bool, csg: UInt8, nsg: UInt8) -> ISCSIPDU {
        var r = ISCSIPDU(opcode: .loginResponse)
        r.flags = (transit ? 0x80 : 0) | (csg << 2) | nsg
        r.bhs[2] = 0x00  // Version-max
        r.bhs[3] = 0x00  // Version-active
        r.bhs.replaceSubrange(8..<14, with: request.bhs[8..<14])  // ISID
        r.put16(request.u16(14), 14)
        r.initiatorTaskTag = request.initiatorTaskTag
        return r
    }
}
