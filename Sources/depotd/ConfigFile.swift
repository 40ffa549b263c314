import ArgumentParser
import Foundation
import Yams

/// `depotd --config FILE`: a YAML mapping whose keys are depotd's long flags
/// without the dashes (`api: 127.0.0.1:8640`, `portal: [10.0.0.5:3260,
/// 10.0.1.5:3260]`, `rescan-interval: 30`). The file's values come first and
/// flags on the command line override them (a repeated flag such as
/// `--portal` replaces the file's list as a whole). An unknown key is an error
/// naming it.
enum ConfigFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The command line with the file's settings put before it.
    static func expand(_ arguments: [String], known: Set<String>) throws -> [String] {
        guard let at = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else {
            return arguments
        }
        let path: String
        var rest = arguments
        if arguments[at] == "--config" {
            guard at + 1 < arguments.count else { throw Failure(description: "--config needs a file") }
            path = arguments[at + 1]
            rest.removeSubrange(at...(at + 1))
        } else {
            path = String(arguments[at].dropFirst("--config=".count))
            rest.remove(at: at)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(description: "cannot read config file \(path)")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw Failure(description: "config file \(path): \(error)") }
        guard let mapping = node?.mapping else {
            throw Failure(description: "config file \(path): expected a mapping of flag: value")
        }
        let given = Set(
            rest.compactMap { $0.hasPrefix("--") ? String($0.dropFirst(2).split(separator: "=").first ?? "") : nil })
        var fromFile: [String] = []
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            let line = key.mark.map { ":\($0.line)" } ?? ""
            guard known.contains(name) else {
                throw Failure(
                    description:
                        "config file \(path)\(line): unknown key '\(name)'; keys are depotd's flags: \(known.sorted().joined(separator: ", "))"
                )
            }
            if given.contains(name) { continue }  // the command line wins
            let values = value.sequence.map { Array($0) } ?? [value]
            for item in values {
                guard let text = item.string else {
                    throw Failure(description: "config file \(path)\(line): '\(name)' needs a value")
                }
                fromFile += ["--\(name)", text]
            }
        }
        return fromFile + rest
    }
}
