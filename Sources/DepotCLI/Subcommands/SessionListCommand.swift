import ArgumentParser
import DepotCore

struct SessionListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract:
            "Initiator, target, peer, TSIH, commands held, age; --wide adds portal, ISID and negotiated parameters.",
        discussion: """
            INFLIGHT counts the commands the target holds for the session: received and not yet answered \
            (waiting for data, for a flush, or running), or answered with the answer not yet taken by the \
            socket. Commands still in the kernel's buffers, either way, are on the wire and not counted, so \
            a fast initiator on a fast link can have more in flight than INFLIGHT shows.
            """)
    @Flag(help: "Every column: portal, ISID and the negotiated parameters too (about 230 columns).") var wide = false
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let sessions = try await global.client().sessions()
            if global.json {
                try Output.json(SessionList(sessions: sessions))
                return
            }
            if wide {
                print(
                    Output.table(
                        ["INITIATOR", "TARGET", "PORTAL", "PEER", "ISID", "TSIH", "INFLIGHT", "AGE", "PARAMETERS"],
                        sessions.map { s in
                            [
                                s.initiator, s.target ?? "(discovery)", s.portal, s.peer, s.isid, "\(s.tsih)",
                                "\(s.commandsInFlight)", "\(s.connectedSeconds) s",
                                ["MaxBurstLength", "FirstBurstLength", "ImmediateData", "HeaderDigest", "AuthMethod"]
                                    .compactMap { k in s.parameters[k].map { "\(k)=\($0)" } }.joined(separator: ","),
                            ]
                        }, rightAligned: [5, 6, 7]))
            } else {
                // Fits 120 columns with the usual IQN lengths.
                print(
                    Output.table(
                        ["INITIATOR", "TARGET", "PEER", "TSIH", "INFLIGHT", "AGE"],
                        sessions.map { s in
                            [
                                s.initiator, s.target ?? "(discovery)", s.peer, "\(s.tsih)", "\(s.commandsInFlight)",
                                "\(s.connectedSeconds) s",
                            ]
                        }, rightAligned: [3, 4, 5]))
            }
        }
    }
}
