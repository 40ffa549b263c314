import DepotSCSI
import NIOCore

extension ISCSIConnection {
    enum Closing: Error { case loginFailed }

    /// One login step, as a task on the event loop: the answer is sent, the
    /// machine told how the step ended, then the inbound side decodes what
    /// follows — with the digests, nexus and phase this answer settled.
    func negotiate(_ request: ISCSIFrame) async {
        let outcome: ConnectionStateMachine.LoginOutcome
        do {
            outcome = try await login(request)
        } catch {
            outcome = .refused
        }
        // The connection may have ended while the step was negotiated (the peer
        // closed it): then there is no session to register and nothing to decode.
        guard !machine.isClosed else { return }
        machine.loginStepEnded(outcome)
        switch outcome {
        case .refused:
            channel.close(promise: nil)
        case .fullFeature:
            registerSession()
            logger.info(
                "session logged in",
                metadata: ["maxRecvDataSegmentLength": "\(params.initiatorMaxRecvDataSegmentLength)"])
            if keepalive.interval != nil { pinger = spawn { await self.keepPeerAlive() } }
            resume()
        case .stay, .operational:
            resume()
        }
    }

    /// Login phase (RFC 7143 §6.3): security stage (AuthMethod None or CHAP),
    /// then operational negotiation, then full feature phase. Answers one
    /// Login Request and says how the step ended; a refusal is answered
    /// with its status and throws.
    private func login(_ frame: ISCSIFrame) async throws -> ConnectionStateMachine.LoginOutcome {
        let request = LoginRequest(frame)
        let transit = request.transit
        let csg = request.currentStage
        var nsg = request.nextStage
        let keys = TextKeys.parse(request.data)
        let first = initiatorName.isEmpty
        if first {
            // (The machine took StatSN and CmdSN from this first request.)
            isid = request.isid
        }
        var answers: [(String, String)] = []

        /// Refuses the login with status 02/`detail`. Authentication (01) and
        /// authorization (02) failures count towards the pair's lockout.
        func fail(_ detail: UInt8, _ why: String, lockedOut: Bool = false) async throws -> Never {
            let target = targetName ?? requestedTarget ?? "-"
            logger.info(
                "login refused", metadata: ["initiator": "\(initiatorName)", "target": "\(target)", "why": "\(why)"])
            if detail == 0x01 || detail == 0x02 {
                let reason = lockedOut ? "locked-out" : detail == 0x01 ? "authentication" : "authorization"
                ISCSIMetrics.loginFailure(target: target, reason: reason)
                if !lockedOut, directory.logins.fail(initiator: initiatorName, address: peerHost) {
                    logger.warning(
                        "login lockout",
                        metadata: [
                            "initiator": "\(initiatorName)", "address": "\(peerHost)",
                            "seconds": "\(Int(directory.logins.lockout))",
                        ])
                }
                // Every failure is audited; refusals while locked out once per lockout.
                if !lockedOut || directory.logins.firstRefusal(initiator: initiatorName, address: peerHost) {
                    directory.reportLoginFailure(
                        LoginFailure(
                            initiator: initiatorName, address: peerHost, target: target, reason: reason, detail: why))
                }
            }
            var r = LoginResponse(answering: request, transit: false, nextStage: 0)
            r.statusClass = 0x02
            r.statusDetail = detail
            try await send(r.frame)
            throw Closing.loginFailed
        }

        if request.continues { try await fail(0x00, "continued text in login is not supported") }
        if first {
            guard let name = keys.first(where: { $0.0 == "InitiatorName" })?.1, !name.isEmpty else {
                try await fail(0x07, "InitiatorName missing")
            }
            initiatorName = name
            // A pair locked out after repeated failures is refused before anything is checked.
            requestedTarget = keys.first(where: { $0.0 == "TargetName" })?.1
            if let wait = directory.logins.lockedFor(initiator: name, address: peerHost) {
                try await fail(
                    0x01, "too many failed logins from \(peerHost); locked out for \(wait) s", lockedOut: true)
            }
            // One connection per session (MaxConnections=1): a login naming an existing
            // session by TSIH would add a connection, which is refused (RFC 7143 §11.13.5:
            // 02/0A session does not exist; ErrorRecoveryLevel 0 reinstates sessions instead).
            if request.tsih != 0 {
                try await fail(0x0A, "adding a connection to session \(request.tsih) is not supported")
            }
            let sessionType = keys.first(where: { $0.0 == "SessionType" })?.1 ?? "Normal"
            discovery = sessionType == "Discovery"
            if !discovery {
                guard let wanted = keys.first(where: { $0.0 == "TargetName" })?.1 else {
                    try await fail(0x07, "TargetName missing")
                }
                // 02/03: target not found; 02/02: authorization failure (RFC 7143 §11.13.5).
                // A target bound to other portals is not found through this one (storage VLANs).
                guard let target = directory.target(wanted), target.served(at: directory.portal(group: portalGroup))
                else {
                    try await fail(0x03, "no target \(wanted) at this portal")
                }
                guard target.admits(initiatorName, from: peerHost) else {
                    try await fail(0x02, "initiator not in the ACL from \(peerHost)")
                }
                targetName = target.iqn
                answers.append(("TargetPortalGroupTag", "\(portalGroup)"))
                if let alias = target.alias { answers.append(("TargetAlias", alias)) }
            }
            logger[metadataKey: "initiator"] = "\(initiatorName)"
            logger[metadataKey: "target"] = "\(targetName ?? "discovery")"
        }
        func key(_ name: String) -> String? { keys.first { $0.0 == name }?.1 }
        let chap = discovery ? nil : targetName.flatMap { directory.target($0) }?.chap
        switch csg {
        case 0:
            if let chap {
                if let methods = key("AuthMethod") {
                    guard methods.split(separator: ",").contains("CHAP") else {
                        try await fail(0x01, "target requires CHAP")
                    }
                    answers.append(("AuthMethod", "CHAP"))
                }
                if let algorithms = key("CHAP_A") {
                    // Only MD5 (5) is defined for iSCSI (RFC 7143 §12.1.3).
                    guard chapChallenge == nil, algorithms.split(separator: ",").contains("5") else {
                        try await fail(0x01, "CHAP algorithm \(algorithms) not supported")
                    }
                    var rng = SystemRandomNumberGenerator()
                    chapIdentifier = UInt8.random(in: 0...255, using: &rng)
                    let challenge = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    chapChallenge = challenge
                    answers += [("CHAP_A", "5"), ("CHAP_I", "\(chapIdentifier)"), ("CHAP_C", CHAP.hex(challenge))]
                }
                if let name = key("CHAP_N"), let responseText = key("CHAP_R") {
                    guard let challenge = chapChallenge else {
                        try await fail(0x01, "CHAP response before a challenge")
                    }
                    // An MD5 response is 16 bytes; anything else (or over CHAP.maxValueBytes) is refused unread.
                    guard responseText.utf8.count <= CHAP.maxValueBytes * 2 + 2, name.utf8.count <= CHAP.maxValueBytes,
                        let response = CHAP.decode(responseText), response.count == 16
                    else {
                        try await fail(0x01, "CHAP_R is not an MD5 response")
                    }
                    let expected = CHAP.response(id: chapIdentifier, secret: chap.secret, challenge: challenge)
                    let nameOK = CHAP.constantTimeEqual(Array(name.utf8), Array(chap.user.utf8))
                    guard CHAP.constantTimeEqual(response, expected) && nameOK else {
                        try await fail(0x01, "CHAP authentication failed")
                    }
                    if let idText = key("CHAP_I"), let challengeText = key("CHAP_C") {
                        // Mutual CHAP: the target answers the initiator's challenge.
                        guard let mutualUser = chap.mutualUser, let mutualSecret = chap.mutualSecret else {
                            try await fail(0x01, "initiator asked for mutual CHAP, none is configured")
                        }
                        // RFC 7143 §12.1.3: a challenge equal to the one the target sent is a
                        // reflection attack; lengths are bounded (CHAP.maxValueBytes).
                        guard challengeText.utf8.count <= CHAP.maxValueBytes * 2 + 2, let id = UInt8(idText),
                            let theirs = CHAP.decode(challengeText), (1...CHAP.maxValueBytes).contains(theirs.count),
                            theirs != challenge
                        else {
                            try await fail(0x01, "bad mutual CHAP challenge")
                        }
                        answers += [
                            ("CHAP_N", mutualUser),
                            ("CHAP_R", CHAP.hex(CHAP.response(id: id, secret: mutualSecret, challenge: theirs))),
                        ]
                    }
                    authenticated = true
                }
            } else if let methods = key("AuthMethod") {
                guard methods.split(separator: ",").contains("None") else {
                    try await fail(0x01, "no acceptable AuthMethod")
                }
                answers.append(("AuthMethod", "None"))
                authenticated = true
            } else {
                authenticated = true
            }
        case 1:
            // Skipping the security stage is only possible where no authentication is required.
            if !authenticated {
                guard chap == nil else { try await fail(0x01, "target requires CHAP") }
                authenticated = true
            }
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
        // No transit out of the security stage before authentication (RFC 7143 §6.3).
        let transitNow = transit && authenticated
        var r = LoginResponse(answering: request, transit: transitNow, nextStage: nsg)
        if transitNow && nsg == 3 { r.tsih = tsih }
        r.data = TextKeys.encode(answers)
        if transitNow && nsg == 3, !discovery, let targetName {
            // Session reinstatement (RFC 7143 §6.3.5): a leading login with the ISID of a
            // live session of this initiator and target replaces that session.
            let replaced = await directory.sessions.reinstate(
                initiator: initiatorName, isid: isidText, target: targetName)
            if replaced > 0 { logger.info("session reinstated", metadata: ["replaced": "\(replaced)"]) }
        }
        guard transitNow, nsg == 3 else {
            try await send(r.frame)
            return transitNow ? .operational : .stay
        }
        // The final answer. Before it is sent, everything the next PDU needs is
        // settled: the nexus named, its power-on unit attentions established, the
        // digests the decoder applies from the next PDU on (RFC 7143 §13.1). The
        // connection decodes nothing until the machine is in full feature phase.
        let nexus = nameNexus()
        establishPowerOnAttentions()
        digests.enable(header: params.headerDigest, data: params.dataDigest)
        try await send(r.frame)
        return .fullFeature(nexus: nexus)
    }

    /// ISID as hex, as the session list shows it.
    var isidText: String { isid.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h): established for
    /// every I_T nexus when an LU comes up (SAM-5 §5.14) and reported once to
    /// each; a nexus that logs in later meets it on its first command. The
    /// directory remembers which nexuses have been told, per volume.
    func establishPowerOnAttentions() {
        for (number, lu) in refreshLUNs() where directory.firstContact(volume: lu.uuid, nexus: nexus) {
            scsi?.establish(.powerOnReset, on: number, first: true)
        }
    }
}
