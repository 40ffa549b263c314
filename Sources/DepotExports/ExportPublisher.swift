import DepotCore
import Foundation
import Logging
#if canImport(Glibc)
    import Glibc
#endif

/// Where published files go and how NFS servers are told to re-read them.
public struct ExportPublisherConfiguration: Sendable {
    /// One `depot-POOL.exports` per exported pool (e.g. `/etc/exports.d`).
    public var exportsDirectory: String
    /// The Ganesha file of EXPORT blocks (`%include`d by ganesha.conf).
    public var ganeshaConfig: String
    /// Ganesha's pid file: SIGHUP makes it re-read its exports.
    public var ganeshaPidFile: String?
    /// `exportfs`, run with `-ra` after a publish when it exists.
    public var exportfsPath: String?

    public init(
        exportsDirectory: String, ganeshaConfig: String, ganeshaPidFile: String? = nil, exportfsPath: String? = nil
    ) {
        self.exportsDirectory = exportsDirectory
        self.ganeshaConfig = ganeshaConfig
        self.ganeshaPidFile = ganeshaPidFile
        self.exportfsPath =
            exportfsPath
            ?? ["/usr/sbin/exportfs", "/sbin/exportfs"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            }
    }
}

/// Writes every export in both formats and asks the servers to reload.
///
/// Everything is rendered and checked before the first file is replaced, so
/// a render that fails validation leaves all previous files in place.
public struct ExportPublisher: Sendable {
    public let configuration: ExportPublisherConfiguration
    let logger: Logger

    public init(configuration: ExportPublisherConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    static let prefix = "depot-"
    static let suffix = ".exports"

    public func publish(_ exports: [ExportInfo]) throws(DepotError) -> PublishReport {
        var report = PublishReport()
        var kernelFiles: [(String, String)] = []
        for export in exports {
            for problem in Self.pathProblems(export.path) {
                report.warnings.append("pool '\(export.pool)': \(problem)")
            }
            kernelFiles.append(
                (
                    configuration.exportsDirectory + "/" + Self.prefix + export.pool + Self.suffix,
                    try ExportRenderers.kernel(export)
                ))
        }
        let ganesha = try ExportRenderers.ganesha(exports)

        for (path, text) in kernelFiles {
            try AtomicFile.write(text, to: path)
            report.files.append(path)
        }
        let keep = Set(kernelFiles.map(\.0))
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: configuration.exportsDirectory)) ?? []
        for name in existing.sorted() where name.hasPrefix(Self.prefix) && name.hasSuffix(Self.suffix) {
            let path = configuration.exportsDirectory + "/" + name
            if !keep.contains(path), unlink(path) == 0 { report.removedFiles.append(path) }
        }
        try AtomicFile.write(ganesha, to: configuration.ganeshaConfig)
        report.files.append(configuration.ganeshaConfig)

        report.reloads.append(contentsOf: reloadKernel())
        report.reloads.append(contentsOf: reloadGanesha(&report))
        logger.info(
            "exports published",
            metadata: [
                "exports": "\(exports.count)", "reloads": "\(report.reloads)", "warnings": "\(report.warnings)",
            ])
        return report
    }

    /// A path that is gone or not a directory still renders (the servers
    /// report it), but the operator hears about it here first.
    static func pathProblems(_ path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            return ["path \(path) does not exist"]
        }
        return isDir.boolValue ? [] : ["path \(path) is not a directory"]
    }

    func reloadKernel() -> [String] {
        guard let exportfs = configuration.exportfsPath, FileManager.default.isExecutableFile(atPath: exportfs) else {
            return []
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exportfs)
        p.arguments = ["-ra"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do {
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return [
                p.terminationStatus == 0 ? "exportfs -ra: ok" : "exportfs -ra: exit \(p.terminationStatus): \(text)"
            ]
        } catch {
            return ["exportfs -ra: cannot run: \(error)"]
        }
    }

    func reloadGanesha(_ report: inout PublishReport) -> [String] {
        guard let pidFile = configuration.ganeshaPidFile else { return [] }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        else {
            report.warnings.append("ganesha pid file \(pidFile) is missing or unreadable; Ganesha was not told")
            return []
        }
        // Ganesha re-reads its EXPORT blocks on SIGHUP (adds, updates and removes exports).
        guard kill(pid, SIGHUP) == 0 else {
            report.warnings.append("ganesha pid \(pid) from \(pidFile): \(String(cString: strerror(errno)))")
            return []
        }
        return ["ganesha: SIGHUP sent to pid \(pid)"]
    }
}
