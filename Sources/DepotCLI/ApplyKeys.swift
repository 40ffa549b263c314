import Yams

/// Strict keys for `depot apply` files: a misspelled key (`provisoning:`)
/// is an error naming the key, the file, the line and the nearest valid key,
/// not a default silently planned.
enum ApplyKeys {
    static let top: Set<String> = ["pools"]
    static let pool: Set<String> = [
        "name", "path", "capacity", "maxOvercommit", "warnPercent", "criticalPercent", "reservedPercent", "volumes",
    ]
    static let volume: Set<String> = [
        "name", "size", "provisioning", "blockSize", "format", "snapshots", "clone", "full",
    ]

    /// Throws for the first unknown key of `yaml` (read from `file`).
    static func check(yaml: String, file: String) throws {
        guard let root = try? Yams.compose(yaml: yaml) else { return }  // the decoder reports syntax errors
        try checkMapping(root, allowed: top, file: file, what: "the file")
        for pool in root.mapping?["pools"]?.sequence ?? [] {
            let poolName = pool.mapping?["name"]?.string ?? "?"
            try checkMapping(pool, allowed: self.pool, file: file, what: "pool '\(poolName)'")
            for volume in pool.mapping?["volumes"]?.sequence ?? [] {
                let name = volume.mapping?["name"]?.string ?? "?"
                try checkMapping(volume, allowed: self.volume, file: file, what: "volume '\(poolName)/\(name)'")
            }
        }
    }

    static func checkMapping(_ node: Node, allowed: Set<String>, file: String, what: String) throws {
        guard let mapping = node.mapping else { return }
        for (key, _) in mapping {
            guard let name = key.string, !allowed.contains(name) else { continue }
            let line = key.mark.map { ":\($0.line)" } ?? ""
            let nearest = allowed.min { distance($0, name) < distance($1, name) }
            let hint =
                nearest.map { distance($0, name) <= max(2, name.count / 3) ? " (did you mean '\($0)'?)" : "" } ?? ""
            throw CLIFailure(
                "\(file)\(line): unknown key '\(name)' in \(what)\(hint); valid keys: \(allowed.sorted().joined(separator: ", "))"
            )
        }
    }

    /// Levenshtein distance, case-insensitive (`blocksize` is one step from `blockSize`... zero).
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased()), y = Array(b.lowercased())
        guard !x.isEmpty else { return y.count }
        guard !y.isEmpty else { return x.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + [Int](repeating: 0, count: y.count)
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }
}
