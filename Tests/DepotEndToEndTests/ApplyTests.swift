import DepotCLI
import DepotCore
import Foundation
import Testing

@Suite(.serialized) struct ApplyTests {
    @Test func applyIsIdempotentAndDryRunChangesNothing() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let dir = (daemon.data as NSString).deletingLastPathComponent
        let file = dir + "/datastores.yaml"
        let yaml = """
            pools:
              - name: gold
                capacity: 10G
                maxOvercommit: 4
                volumes:
                  - name: vm1
                    size: 1G
                  - name: db
                    size: 64M
                    provisioning: thick
                    blockSize: 4096
              - name: default
                volumes:
                  - name: scratch
                    size: 16M
                  - name: img
                    size: 16M
                    format: qcow2
            """
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        var r = try daemon.depot(["apply", "-f", file, "--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stdout.contains("create pool gold") && r.stdout.contains("create volume gold/db 64 MiB thick block 4096")
                && r.stdout.contains("create volume default/img 16 MiB thin block 512 qcow2"), "\(r.stdout)")
        #expect(try await daemon.client.pools().map(\.name) == ["default"])

        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("applied 5 change(s)"))
        let volumes = try await daemon.client.volumes(pool: nil).map {
            "\($0.pool)/\($0.name):\($0.sizeBytes):\($0.provisioning.rawValue):\($0.format.rawValue)"
        }
        #expect(
            volumes.sorted() == [
                "default/img:16777216:thin:qcow2", "default/scratch:16777216:thin:raw", "gold/db:67108864:thick:raw",
                "gold/vm1:1073741824:thin:raw",
            ])

        r = try daemon.depot(["apply", "-f", file])
        #expect(r.stdout.contains("plan: nothing to do"), "\(r.stdout)")

        try yaml.replacingOccurrences(of: "size: 1G", with: "size: 2G").replacingOccurrences(
            of: "maxOvercommit: 4", with: "maxOvercommit: 5"
        )
        .write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(
            r.stdout.contains("resize volume gold/vm1 1 GiB -> 2 GiB") && r.stdout.contains("maxOvercommit 4.0 -> 5.0"),
            "\(r.stdout)")
        #expect(try await daemon.client.volume(VolumeRef(pool: "gold", name: "vm1")).sizeBytes == 2 << 30)

        // Shrinking and changing provisioning or format are refused before anything runs.
        try yaml.replacingOccurrences(
            of: "size: 64M\n        provisioning: thick", with: "size: 32M\n        provisioning: thin"
        ).replacingOccurrences(of: "format: qcow2", with: "format: raw")
            .write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status != 0)
        #expect(
            r.stderr.contains("never shrinks") && r.stderr.contains("provisioning cannot change")
                && r.stderr.contains("default/img is qcow2, the file says raw; format cannot change"), "\(r.stderr)")
        try "pools:\n  - name: x\n    volumes:\n      - name: v\n        size: 10Q\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status != 0 && r.stderr.contains("unknown size unit"), "\(r.stderr)")
    }

    /// Snapshots and clones declared: made in order (volume, snapshot, clone
    /// of it), a second run has nothing to do, and a clone of a snapshot no
    /// entry makes is an error naming it.
    @Test func applyMakesSnapshotsAndClones() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let dir = (daemon.data as NSString).deletingLastPathComponent
        let file = dir + "/golden.yaml"
        let yaml = """
            pools:
              - name: default
                volumes:
                  - name: golden
                    size: 16M
                    snapshots: [base]
                  - name: vm1
                    clone: golden@base
                  - name: vm2
                    clone: default/golden@base
                    full: true
            """
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        var r = try daemon.depot(["apply", "-f", file])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(
            r.stdout.contains("create snapshot default/golden@base")
                && r.stdout.contains("clone default/golden@base as volume default/vm1 (linked)")
                && r.stdout.contains("clone default/golden@base as volume default/vm2 (full copy)"), "\(r.stdout)")
        let vm1 = try await daemon.client.volume(VolumeRef(pool: "default", name: "vm1"))
        let vm2 = try await daemon.client.volume(VolumeRef(pool: "default", name: "vm2"))
        #expect(vm1.base == "default/golden@base" && vm2.base == nil && vm2.state == .ready)
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.stdout.contains("plan: nothing to do"), "\(r.stdout)")

        try (yaml + "\n      - name: vm3\n        clone: golden@nope\n").write(
            toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file, "--dry-run"])
        #expect(r.status != 0 && r.stderr.contains("default/golden@nope"), "\(r.stderr)")
    }

    @Test func shippedExamplesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dir = root.appendingPathComponent("Targets").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for name in files {
            let spec = try ApplySpec.parse(
                yaml: try String(contentsOfFile: dir + "/" + name, encoding: .utf8), file: name)
            #expect(!spec.pools.isEmpty, "\(name)")
            #expect(try !ApplyPlanner.plan(spec: spec, pools: [], volumes: []).isEmpty, "\(name)")
        }
    }

    /// A misspelled key is an error naming the key, the file, the line and the
    /// nearest valid key (it used to be ignored and a default planned); the
    /// dry run's JSON carries a real boolean.
    @Test func unknownKeysAreErrorsWithTheLine() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let file = (daemon.data as NSString).deletingLastPathComponent + "/typo.yaml"
        try """
        pools:
          - name: gold
            volumes:
              - name: vm1
                size: 1G
                provisoning: thick
        """.write(toFile: file, atomically: true, encoding: .utf8)
        var r = try daemon.depot(["apply", "-f", file, "--dry-run"])
        #expect(
            r.status != 0
                && r.stderr.contains(
                    "\(file):6: unknown key 'provisoning' in volume 'gold/vm1' (did you mean 'provisioning'?)"),
            "\(r.stderr)")
        try """
        pools:
          - name: gold
            volumes:
              - name: vm1
                size: 1G
                blocksize: 4096
        """.write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(
            r.status != 0 && r.stderr.contains(":6: unknown key 'blocksize'")
                && r.stderr.contains("did you mean 'blockSize'"), "\(r.stderr)")
        #expect(try await daemon.client.pools().map(\.name) == ["default"], "nothing was created")
        try """
        pools:
          - name: gold
        """.write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file, "--dry-run", "--json"])
        struct Plan: Decodable {
            var plan: [String]
            var dryRun: Bool
        }
        #expect(try JSONDecoder().decode(Plan.self, from: Data(r.stdout.utf8)).dryRun == true, "\(r.stdout)")
    }

    /// The plan is checked as a whole before anything is done (a 30 MiB thick
    /// volume in a 20 MiB pool fails the dry run too), and a failure part way
    /// undoes what that run created, saying what.
    @Test func thePlanMustFitAndAFailureRollsBack() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let file = (daemon.data as NSString).deletingLastPathComponent + "/fit.yaml"
        try """
        pools:
          - name: small
            capacity: 20M
            volumes:
              - name: first
                size: 8M
              - name: big
                size: 30M
                provisioning: thick
        """.write(toFile: file, atomically: true, encoding: .utf8)
        var r = try daemon.depot(["apply", "-f", file, "--dry-run"])
        #expect(r.status != 0 && r.stderr.contains("does not fit") && r.stderr.contains("small/big"), "\(r.stderr)")
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status != 0 && r.stderr.contains("nothing was done"), "\(r.stderr)")
        #expect(try await daemon.client.pools().map(\.name) == ["default"])
        // A new pool on the filesystem's size: only depotd can check it, so the failure
        // comes part way, and what the run created is undone.
        try """
        pools:
          - name: silver
            volumes:
              - name: a
                size: 1M
              - name: b
                size: 64T
                provisioning: thick
        """.write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status != 0 && r.stderr.contains("undone: volume silver/a, pool silver"), "\(r.stderr)")
        #expect(try await daemon.client.pools().map(\.name) == ["default"])
        #expect(try await daemon.client.volumes(pool: nil).isEmpty)
    }
}
