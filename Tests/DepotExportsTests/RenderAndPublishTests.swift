import DepotCore
import DepotExports
import Foundation
import Logging
import Testing

@Suite struct RenderAndPublishTests {
    let export = ExportInfo(
        pool: "gold", path: "/srv/depot/gold", fsid: 103, pseudo: "/depot/gold",
        rules: [
            ExportRule(client: "10.0.0.0/24", access: .rw, squash: .root),
            ExportRule(client: "*", access: .ro, squash: .all, anonuid: 65534, anongid: 65534),
        ],
        createdAt: "t")

    @Test func kernelFormatFollowsExports5() throws {
        let text = try ExportRenderers.kernel(export)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("\"") })
        #expect(
            line
                == #""/srv/depot/gold" 10.0.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys,fsid=103) *(ro,sync,no_subtree_check,all_squash,anonuid=65534,anongid=65534,sec=sys,fsid=103)"#
        )
    }

    @Test func ganeshaFormatHasEveryField() throws {
        let text = try ExportRenderers.ganesha([export])
        for needle in [
            "Export_Id = 103;", "Path = \"/srv/depot/gold\";", "Pseudo = \"/depot/gold\";", "Filesystem_Id = 103.103;",
            "Access_Type = None;", "Protocols = 3, 4;", "Transports = TCP;", "SecType = sys;", "FSAL { Name = VFS; }",
            "CLIENT { Clients = 10.0.0.0/24; Access_Type = RW; Squash = Root_Squash; }",
            "CLIENT { Clients = *; Access_Type = RO; Squash = All_Squash; Anonymous_Uid = 65534; Anonymous_Gid = 65534; }",
        ] {
            #expect(text.contains(needle), "missing \(needle)")
        }
        #expect(text.components(separatedBy: "{").count == text.components(separatedBy: "}").count)
    }

    func publisher(_ root: String, pidFile: String? = nil) -> ExportPublisher {
        ExportPublisher(
            configuration: ExportPublisherConfiguration(
                exportsDirectory: root + "/exports.d", ganeshaConfig: root + "/ganesha/depot.conf",
                ganeshaPidFile: pidFile,
                exportfsPath: "/nonexistent"), logger: Logger(label: "test"))
    }

    @Test func publishWritesRemovesStaleAndKeepsOldFilesOnBadRender() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-pub-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/exports.d", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/exports.d/depot-old.exports", contents: Data("old".utf8))
        FileManager.default.createFile(atPath: root + "/exports.d/someone-else.exports", contents: Data("theirs".utf8))
        let p = publisher(root)
        let report = try p.publish([export])
        #expect(report.removedFiles == [root + "/exports.d/depot-old.exports"])
        #expect(report.files.contains(root + "/exports.d/depot-gold.exports"))
        #expect(report.warnings.contains { $0.contains("does not exist") })
        #expect(FileManager.default.contents(atPath: root + "/exports.d/someone-else.exports") == Data("theirs".utf8))
        let before = try String(contentsOfFile: root + "/ganesha/depot.conf", encoding: .utf8)

        var bad = export
        bad.pool = "evil"
        bad.path = "/srv/\"quoted\""
        #expect(throws: DepotError.self) { try p.publish([export, bad]) }
        #expect(try String(contentsOfFile: root + "/ganesha/depot.conf", encoding: .utf8) == before)
        #expect(!FileManager.default.fileExists(atPath: root + "/exports.d/depot-evil.exports"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: root + "/exports.d").sorted() == [
                "depot-gold.exports", "someone-else.exports",
            ])
    }

    @Test func ganeshaIsSentSIGHUP() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-hup-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // perl (Debian's essential perl-base) clears the signal mask it inherits
        // from the test runner's thread, installs a handler and records the signal.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        sleeper.arguments = [
            "-e",
            #"use POSIX; sigprocmask(SIG_SETMASK, POSIX::SigSet->new()); $SIG{HUP} = sub { open(my $f, '>', $ARGV[0]); print $f "HUP"; close($f); exit 0 }; sleep 1 for 1..600; exit 3"#,
            root + "/got-signal",
        ]
        try sleeper.run()
        try await Task.sleep(for: .milliseconds(300))
        try "\(sleeper.processIdentifier)\n".write(toFile: root + "/ganesha.pid", atomically: true, encoding: .utf8)
        let report = try publisher(root, pidFile: root + "/ganesha.pid").publish([])
        // It waits up to 10 minutes (a loaded machine can hold this test's task
        // for longer than a shorter wait), and goes at once when told; not told,
        // it is stopped rather than waited for (the expectations below fail).
        if report.reloads.isEmpty { sleeper.terminate() }
        sleeper.waitUntilExit()
        #expect(
            report.reloads == ["ganesha: SIGHUP sent to pid \(sleeper.processIdentifier)"],
            "warnings: \(report.warnings)")
        #expect(sleeper.terminationStatus == 0)
        #expect(FileManager.default.contents(atPath: root + "/got-signal") == Data("HUP".utf8))
        let missing = try publisher(root, pidFile: root + "/nope.pid").publish([])
        #expect(missing.warnings.contains { $0.contains("nope.pid") })
    }

    @Test func exportfsRunsWithRAWhenPresent() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-exportfs-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // A stand-in exportfs that records how it was called (the real one needs nfs-kernel-server).
        let script = root + "/exportfs"
        try "#!/bin/sh\necho \"$@\" >> \(root)/calls\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let p = ExportPublisher(
            configuration: ExportPublisherConfiguration(
                exportsDirectory: root + "/exports.d", ganeshaConfig: root + "/g.conf", exportfsPath: script),
            logger: Logger(label: "test"))
        let report = try p.publish([export])
        #expect(report.reloads == ["exportfs -ra: ok"])
        #expect(try String(contentsOfFile: root + "/calls", encoding: .utf8) == "-ra\n")
    }
}
