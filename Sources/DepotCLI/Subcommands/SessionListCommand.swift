import ArgumentParser
import DepotCore

struct SessionListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Initiator, target, portal, ISID/TSIH, connection, negotiated parameters, commands in flight.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let sessions = try await global.client().sessions()
            if global.json { try Output.json(SessionList(sessions: sessions)) } else {
                print(Output.table(
                    ["INITIATOR", "TARGET", "PORTAL", "PEER", "ISID", "TSIH", "INFLIGHT", "PARAMETERS"],
                    sessions.map { s in
                        [s.initiator, s.target ?? "(discovery)", s.portal, s.peer, s.isid, "\(s.tsih)", "\(s.commandsInFlight)",
                         ["MaxBurstLength", "FirstBurstLength", "ImmediateData", "HeaderDigest", "AuthMethod"]
                            .compactMap { k in s.parameters[k].map { "\(k)=\($0)" } }.joined(separator: ",")]
                    }, rightAligned: [5, 6]))
            }
        }
    }
}
