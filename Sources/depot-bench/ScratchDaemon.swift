import DepotCLI
import Foundation

/// A release depotd on a scratch directory for one benchmark run: started
/// with free ports, stopped (and the directory removed) by `stop()`.
final class ScratchDaemon {
    let process = Process()
    let scratch: String
    let client: DepotClient
    let url: String
    let token: String
    /// The first iSCSI portal, "127.0.0.1:PORT".
    let portal: String

    init(depotd: String, extra: [String] = []) async throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-\(UUID())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let data = scratch + "/data"
        process.executableURL = URL(fileURLWithPath: depotd)
        process.arguments =
            ["--data", data, "--api", "127.0.0.1:0", "--portal", "127.0.0.1:0", "--log-level", "warning"] + extra
        process.standardError = FileHandle.nullDevice
        try process.run()
        var url = ""
        var portal = ""
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: data + "/api.url", encoding: .utf8),
                let portals = try? String(contentsOfFile: data + "/iscsi.portals", encoding: .utf8), !portals.isEmpty
            {
                url = text.trimmingCharacters(in: .whitespacesAndNewlines)
                portal = String(portals.split(separator: "\n").first ?? "")
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard !url.isEmpty else {
            process.terminate()
            throw BenchError("depotd did not start")
        }
        self.url = url
        self.portal = portal
        token = try String(contentsOfFile: data + "/api-token", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        client = DepotClient(baseURL: URL(string: url)!, token: token)
    }

    var pid: Int32 { process.processIdentifier }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// VmRSS (current) or VmHWM (peak) from /proc/PID/status, in bytes.
    func memory(_ field: String = "VmRSS") -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
            let kb = UInt64(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kb * 1024
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
