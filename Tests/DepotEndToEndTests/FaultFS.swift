import Foundation

/// scripts/faultfs.py mounted over a fresh directory: a FUSE passthrough that
/// fails fsync or writes on demand and can record every change it sees.
/// `stop()` unmounts it.
final class FaultFS {
    let mountpoint: String
    let control: String
    let process: Process

    /// `record`: faultfs logs every change there (scripts/powercut.py reads it).
    init(under dir: String, record: String? = nil) async throws {
        let root = dir + "/faultfs-root"
        mountpoint = dir + "/faultfs"
        control = dir + "/faultfs-control"
        for d in [root, mountpoint, control] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/faultfs.py").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, root, mountpoint, control] + (record.map { ["--record", $0] } ?? [])
        let log = Pipe()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
            if mounts.contains(" \(mountpoint) fuse") { return }
            guard process.isRunning else {
                let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw HarnessError("faultfs exited: \(text) (needs python3-fusepy and /dev/fuse)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("faultfs did not mount \(mountpoint) within 10 s")
    }

    func failFsync(_ on: Bool) { fail("fsync", on) }
    func failWrite(_ on: Bool) { fail("write", on) }

    func fail(_ what: String, _ on: Bool) {
        let flag = control + "/fail-" + what
        if on {
            FileManager.default.createFile(atPath: flag, contents: nil)
        } else {
            try? FileManager.default.removeItem(atPath: flag)
        }
    }

    /// Records a mark in the log: a lookup of `.powercut-mark-NAME`.
    func mark(_ name: String) {
        _ = FileManager.default.fileExists(atPath: mountpoint + "/.powercut-mark-" + name)
    }

    /// Unmounts; faultfs then closes its record and exits (terminated after 10 s).
    func stop() {
        _ = try? Daemon.run("/bin/umount", ["-l", mountpoint])
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
