import Foundation
import Testing

/// qemu-img and qemu-io, the oracle for every image file Depot writes.
enum QemuImg {
    struct Run {
        let status: Int32
        let output: String
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Runs `tool`, requiring exit status 0.
    @discardableResult
    static func must(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try run(tool, arguments)
        #expect(result.status == 0, "\(tool) \(arguments.joined(separator: " ")): \(result.output)")
        return result.output
    }

    static func info(_ path: String) throws -> [String: Any] {
        let json = try must("qemu-img", ["info", "--output=json", path])
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
    }

    /// A fresh directory, removed by the caller.
    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-qcow2-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Deterministic bytes for tests (seeded; seeds printed on failure by the callers).
struct SeededBytes {
    var state: UInt64

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }

    mutating func below(_ n: UInt64) -> UInt64 { next() % n }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next() >> 33) }
    }
}

/// Where two byte sequences first differ, or nil when they are equal. Large
/// buffers are compared with this, not with `#expect(a == b)`: a failed
/// expectation on two 48 MiB arrays makes Swift Testing diff them element by
/// element, which runs for hours instead of failing.
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String? {
    if a == b { return nil }  // the fast path: one comparison of the storage
    if a.count != b.count { return "lengths \(a.count) and \(b.count)" }
    let offset = a.indices.first { a[$0] != b[$0] } ?? 0
    return "byte \(offset): \(a[offset]) and \(b[offset])"
}
