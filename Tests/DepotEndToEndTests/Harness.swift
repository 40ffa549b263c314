import DepotCLI
import DepotCore
import Foundation
import Testing

/// Runs the real `depotd` and `depot` binaries built by `swift build`.
enum Binaries {
    /// `DEPOT_BIN_DIR`, else the package's `.build/debug`.
    static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["DEPOT_BIN_DIR"] { return dir }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("\(path) is missing: run `swift build` (or `make test`) first, or set DEPOT_BIN_DIR")
        }
        return path
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// One depotd process on its own data directory and a free loopback port.
final class Daemon: @unchecked Sendable {
    let data: String
    private(set) var process: Process?
    private(set) var url = ""
    private(set) var token = ""
    /// The first iSCSI portal, `127.0.0.1:PORT`.
    private(set) var portal = ""
    /// Beside the data directory, which does not exist before the first start.
    private var logPath: String {
        (data as NSString).deletingLastPathComponent + "/depotd-\(ObjectIdentifier(self).hashValue).log"
    }

    init(data: String) { self.data = data }

    static func makeDataDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-e2e-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("data").path
    }

    /// `defaults`: only the data directory and free ports, every other
    /// option as the daemon ships (the conformance run); otherwise the
    /// tests' quick rescans and debug log.
    func start(extra: [String] = [], defaults: Bool = false) async throws {
        try? FileManager.default.removeItem(atPath: data + "/api.url")
        try? FileManager.default.removeItem(atPath: data + "/iscsi.portals")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Binaries.path("depotd"))
        p.arguments =
            ["--data", data, "--api", "127.0.0.1:0", "--portal", "127.0.0.1:0"]
            + (defaults ? [] : ["--rescan-interval", "1", "--log-level", "debug"]) + extra
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: data + "/api.url", encoding: .utf8), !text.isEmpty,
                let portals = try? String(contentsOfFile: data + "/iscsi.portals", encoding: .utf8), !portals.isEmpty
            {
                url = text.trimmingCharacters(in: .whitespacesAndNewlines)
                portal = String(portals.split(separator: "\n").first ?? "")
                token = try String(contentsOfFile: data + "/api-token", encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)
                return
            }
            guard p.isRunning else { throw HarnessError("depotd exited \(p.terminationStatus) at start:\n\(self.log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("depotd did not start within 30 s:\n\(self.log)")
    }

    var log: String { FileManager.default.contents(atPath: logPath).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    var client: DepotClient { DepotClient(baseURL: URL(string: url)!, token: token) }

    var pid: Int32? { process?.processIdentifier }

    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM and wait; returns the exit status.
    func terminate() async throws -> Int32 {
        guard let p = process else { return -1 }
        kill(p.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(20)
        while p.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw HarnessError("depotd ignored SIGTERM for 20 s")
        }
        process = nil
        return p.terminationStatus
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }

    func cleanup() {
        kill9()
        try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
    }

    /// Runs the real `depot` CLI against this daemon.
    func depot(_ args: [String], env extra: [String: String] = [:], cwd: String? = nil) throws -> CommandResult {
        try Daemon.run(
            try Binaries.path("depot"), args, env: ["DEPOT_API": url, "DEPOT_TOKEN": token].merging(extra) { $1 },
            cwd: cwd)
    }

    /// Starts `depot` without waiting.
    func depotAsync(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Binaries.path("depot"))
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["DEPOT_API": url, "DEPOT_TOKEN": token]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    static func run(_ path: String, _ args: [String], env extra: [String: String] = [:], cwd: String? = nil) throws
        -> CommandResult
    {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["DEPOT_API"] = nil
        env["DEPOT_TOKEN"] = nil
        p.environment = env.merging(extra) { $1 }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CommandResult(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}
