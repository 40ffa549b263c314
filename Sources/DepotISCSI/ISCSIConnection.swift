import DepotSCSI
import Logging
import NIOCore

/// One iSCSI connection (one connection per session: MaxConnections=1,
/// ErrorRecoveryLevel=0). PDUs are handled in order; PDUs that arrive while
/// a write waits for its Data-Out are queued and handled after it.
final class ISCSIConnection {
    typealias Inbound = NIOAsyncChannelInboundStream<ISCSIPDU>.AsyncIterator
    typealias Outbound = NIOAsyncChannelOutboundWriter<ISCSIPDU>

    enum Closing: Error { case peerClosed, loggedOut, loginFailed }

    let directory: TargetDirectory
    let portals: [String]
    let tsih: UInt16
    var logger: Logger

    var statSN: UInt32 = 0
    var expCmdSN: UInt32 = 0
    var params = NegotiatedParameters()
    var inFullFeature = false
    var discovery = false
    var initiatorName = ""
    var targetName: String?
    var sentOperationalDeclarations = false
    var pending: [ISCSIPDU] = []
    var nextTransferTag: UInt32 = 1
    /// Security stage: done once AuthMethod=None was agreed or CHAP verified.
    var authenticated = false
    var chapIdentifier: UInt8 = 0
    var chapChallenge: [UInt8]?
    /// The LUN map as this nexus last saw it (LU identity and size), and unit
    /// attentions waiting per LUN (SPC-4 §5.14: established per I_T nexus).
    var seenLUNs: [UInt16: (ObjectIdentifier, UInt64)] = [:]
    var unitAttentions: [UInt16: [SCSISense]] = [:]
    /// ISID from the login: with the initiator name it names the I_T nexus.
    var isid: [UInt8] = []

    /// The I_T nexus (SAM-5 §4.6.2): initiator port name (name + ISID) and target.
    var nexus: String {
        "\(initiatorName.lowercased()),i,0x\(isid.map { String($0, radix: 16) }.joined())|\(targetName ?? "")"
    }

    /// Reservations die with the nexus.
    func releaseNexus() {
        guard let target = targetName.flatMap({ directory.target($0) }) else { return }
        for lu in target.luns.values { lu.clearReservation(heldBy: nexus) }
    }

    /// Where the session is registered while in full feature phase.
    let sessionID: Int
    let localAddress: String
    let peerAddress: String
    let close: @Sendable () -> Void
    let digests: DigestSettings

    init(
        directory: TargetDirectory, portals: [String], tsih: UInt16, logger: Logger, localAddress: String = "", peerAddress: String = "",
        close: @escaping @Sendable () -> Void = {}, digests: DigestSettings = DigestSettings()
    ) {
        self.digests = digests
        self.directory = directory
        self.portals = portals
        self.tsih = tsih
        self.logger = logger
        self.sessionID = Int(tsih)
        self.localAddress = localAddress
        self.peerAddress = peerAddress
        self.close = close
    }

    func registerSession() {
        let parameters = [
            "MaxRecvDataSegmentLength(initiator)": "\(params.initiatorMaxRecvDataSegmentLength)",
            "MaxRecvDataSegmentLength(target)": "\(NegotiatedParameters.targetMaxRecvDataSegmentLength)",
            "MaxBurstLength": "\(params.maxBurstLength)", "FirstBurstLength": "\(params.firstBurstLength)",
            "ImmediateData": params.immediateData ? "Yes" : "No", "InitialR2T": "Yes", "HeaderDigest": params.headerDigest ? "CRC32C" : "None", "DataDigest": params.dataDigest ? "CRC32C" : "None",
            "MaxOutstandingR2T": "1", "ErrorRecoveryLevel": "0", "MaxConnections": "1",
            "AuthMethod": targetName.flatMap { directory.target($0) }?.chap == nil || discovery ? "None" : "CHAP",
        ]
        directory.sessions.register(
            SessionSnapshot(
                id: sessionID, initiator: initiatorName, target: discovery ? nil : targetName, portal: localAddress, peer: peerAddress,
                isid: isid.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(), tsih: tsih, parameters: parameters,
                commandsInFlight: 0, loggedInAt: .now),
            close: close)
    }

    var maxCmdSN: UInt32 { expCmdSN &+ 127 }

    func run(inbound: inout Inbound, outbound: Outbound) async throws {
        while true {
            let pdu: ISCSIPDU
            if !pending.isEmpty {
                pdu = pending.removeFirst()
            } else {
                guard let next = try await inbound.next() else { return }
                pdu = next
            }
            do {
                if inFullFeature {
                    try await fullFeature(pdu, inbound: &inbound, outbound: outbound)
                } else {
                    try await login(pdu, outbound: outbound)
                }
            } catch Closing.loggedOut {
                return
            } catch Closing.loginFailed {
                return
            }
        }
    }



    // MARK: Sequence numbers

    /// Non-immediate commands advance ExpCmdSN (RFC 7143 §3.2.2.1).
    func accept(_ pdu: ISCSIPDU) {
        if !pdu.immediate { expCmdSN = pdu.u32(24) &+ 1 }
    }

    func stamp(_ pdu: inout ISCSIPDU, status: Bool) {
        if inFullFeature {
            pdu.headerDigest = params.headerDigest
            pdu.dataDigest = params.dataDigest
        }
        pdu.put32(statSN, 24)
        if status { statSN &+= 1 }
        pdu.put32(expCmdSN, 28)
        pdu.put32(maxCmdSN, 32)
    }

    func reject(_ pdu: ISCSIPDU, reason: UInt8, outbound: Outbound) async throws {
        var r = ISCSIPDU(opcode: .reject)
        r.flags = 0x80
        r.bhs[2] = reason
        r.initiatorTaskTag = 0xFFFF_FFFF
        stamp(&r, status: true)
        r.data = pdu.bhs
        try await outbound.write(r)
    }
}
