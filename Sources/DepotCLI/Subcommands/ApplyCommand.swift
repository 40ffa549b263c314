import ArgumentParser
import DepotCore
import Foundation

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Create or grow pools, volumes, snapshots and clones to match a YAML file; prints the plan first.",
        discussion: "Idempotent: a second run finds nothing to do. Never deletes or shrinks.")

    @Option(name: .short, help: "YAML file of pools and volumes.") var file: String
    @Flag(name: .customLong("dry-run"), help: "Print the plan only.") var dryRun = false
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIFailure("cannot read \(file)")
            }
            let spec = try ApplySpec.parse(yaml: text, file: file)
            let client = try global.client()
            let pools = try await client.pools()
            let steps = try ApplyPlanner.plan(
                spec: spec, pools: pools, volumes: try await client.volumes(pool: nil),
                snapshots: try await client.snapshots(volume: nil))
            if global.json {
                struct Plan: Encodable {
                    var plan: [String]
                    var dryRun: Bool
                }
                try Output.json(Plan(plan: steps.map(\.description), dryRun: dryRun))
            } else {
                print(
                    steps.isEmpty
                        ? "plan: nothing to do" : "plan:\n" + steps.map { "  + \($0)" }.joined(separator: "\n"))
            }
            // The plan as a whole must fit before anything is done, dry run or not.
            try ApplyAdmission.check(steps, pools: pools)
            guard !dryRun else { return }
            // What this run created, newest first: undone if a later step fails.
            var created: [(undo: () async throws -> Void, what: String)] = []
            do {
                for step in steps {
                    switch step {
                    case .createPool(let request):
                        var r = request
                        if let p = r.path, !p.hasPrefix("/") {
                            let base = (URL(fileURLWithPath: file).deletingLastPathComponent().path)
                            r.path = base + "/" + p
                        }
                        _ = try await client.createPool(r)
                        created.insert(({ try await client.deletePool(r.name, force: false) }, "pool \(r.name)"), at: 0)
                    case .updatePool(let name, let request, _):
                        _ = try await client.updatePool(name, request)
                    case .createVolume(let pool, let request):
                        let ref = VolumeRef(pool: pool, name: request.name)
                        _ = try await client.createVolume(ref, request, json: global.json, quiet: global.quiet)
                        created.insert(({ try await client.deleteVolume(ref) }, "volume \(ref)"), at: 0)
                    case .growVolume(let ref, _, let to):
                        _ = try await client.updateVolume(ref, UpdateVolumeRequest(sizeBytes: to))
                    case .createSnapshot(let ref):
                        _ = try await client.createSnapshot(ref)
                        created.insert(({ _ = try await client.deleteSnapshot(ref) }, "snapshot \(ref)"), at: 0)
                    case .cloneVolume(let source, let target, let full, _):
                        let started = try await client.clone(source, to: target, full: full, rateMiB: nil)
                        created.insert(({ try await client.deleteVolume(target) }, "volume \(target)"), at: 0)
                        if let job = started.job {
                            _ = try await client.wait(for: job, quiet: global.quiet || global.json)
                        }
                    }
                    if !global.json { print("done: \(step)") }
                }
            } catch {
                // Roll back what this run created; pool updates and grows stay (they
                // lose nothing) and are said so.
                var undone: [String] = []
                var kept: [String] = []
                for (undo, what) in created {
                    do {
                        try await undo()
                        undone.append(what)
                    } catch { kept.append("\(what) (\(error))") }
                }
                let message =
                    "\(error)" + (undone.isEmpty ? "" : "; undone: " + undone.joined(separator: ", "))
                    + (kept.isEmpty ? "" : "; could not undo: " + kept.joined(separator: ", "))
                throw CLIFailure(message)
            }
            if !global.json && !steps.isEmpty { print("applied \(steps.count) change(s)") }
        }
    }
}
