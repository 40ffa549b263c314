import DepotCore
import Foundation

/// Human output: aligned tables and sizes; `--json` output: the API objects.
enum Output {
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// Columns padded to their widest cell; numbers right-aligned.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func percent(_ value: Double) -> String { String(format: "%.1f%%", value) }
    static func ratio(_ value: Double) -> String { String(format: "%.2fx", value) }

    static func flags(_ pool: PoolInfo) -> String {
        var flags: [String] = []
        if pool.state != .ok { flags.append(pool.state.rawValue.uppercased()) }
        if pool.overprovisioned { flags.append("OVERPROVISIONED") }
        if pool.overcommitRatio > pool.maxOvercommit { flags.append("OVER-MAX-OVERCOMMIT") }
        if pool.exceedsFilesystem { flags.append("EXCEEDS-FILESYSTEM") }
        return flags.isEmpty ? "-" : flags.joined(separator: ",")
    }

    static func poolTable(_ pools: [PoolInfo]) -> String {
        table(
            [
                "NAME", "CAPACITY", "USED", "PROVISIONED", "FREE", "FS-FREE", "USED%", "OVERCOMMIT", "STATE", "FLAGS",
                "VOLUMES",
            ],
            pools.map { p in
                [
                    p.name, ByteSize.format(p.capacityBytes), ByteSize.format(p.usedBytes),
                    ByteSize.format(p.provisionedBytes),
                    ByteSize.format(p.freeBytes), ByteSize.format(p.filesystemFreeBytes), percent(p.usedPercent),
                    ratio(p.overcommitRatio),
                    p.state.rawValue, flags(p), "\(p.volumeCount)",
                ]
            }, rightAligned: [1, 2, 3, 4, 5, 6, 7, 10]) + sharingNotes(pools)
    }

    /// Pools on one filesystem share its free space: said under the table.
    static func sharingNotes(_ pools: [PoolInfo]) -> String {
        var seen = Set<String>()
        var notes: [String] = []
        for p in pools where !p.sharesFilesystemWith.isEmpty && !seen.contains(p.name) {
            let group = ([p.name] + p.sharesFilesystemWith).sorted()
            seen.formUnion(group)
            notes.append(
                "\nnote: pools \(group.joined(separator: ", ")) share one filesystem (\(ByteSize.format(p.filesystemFreeBytes)) free): their FREE is the same space, counted once"
            )
        }
        return notes.joined()
    }

    static func volumeTable(_ volumes: [VolumeInfo]) -> String {
        table(
            ["VOLUME", "SIZE", "ALLOCATED", "PROVISIONING", "BLOCK", "STATE", "FORMAT"],
            volumes.map { v in
                [
                    "\(v.pool)/\(v.name)", ByteSize.format(v.sizeBytes), ByteSize.format(v.allocatedBytes),
                    v.provisioning.rawValue,
                    "\(v.blockSize)", v.state.rawValue, v.format.rawValue,
                ]
            }, rightAligned: [1, 2, 4])
    }

    static func targetDetail(_ t: TargetInfo) -> String {
        var out = table(
            ["FIELD", "VALUE"],
            [
                ["iqn", t.iqn], ["alias", t.alias ?? "-"],
                [
                    "access",
                    t.allowAnyInitiator
                        ? "any initiator"
                        : (t.initiators.isEmpty
                            ? "nobody (add an ACL)"
                            : t.initiators.map { name in
                                t.networks?[name].map { "\(name) from \($0.joined(separator: " "))" } ?? name
                            }.joined(separator: ", ")),
                ],
                ["portals", t.portals?.joined(separator: ", ") ?? "all"],
                ["chap", t.chapUser.map { "user \($0)" + (t.mutualChap ? ", mutual" : "") } ?? "none"],
                ["created", t.createdAt],
            ])
        out +=
            "\n\n"
            + table(
                ["LUN", "VOLUME", "MODE"], t.luns.map { ["\($0.lun)", $0.volume, $0.readOnly ? "ro" : "rw"] },
                rightAligned: [0])
        return out
    }

    static func rule(_ r: ExportRule) -> String {
        var options = [r.access.rawValue, "squash=\(r.squash.rawValue)"]
        if let uid = r.anonuid { options.append("anonuid=\(uid)") }
        if let gid = r.anongid { options.append("anongid=\(gid)") }
        return "\(r.client)(\(options.joined(separator: ",")))"
    }

    static func poolDetail(_ p: PoolInfo) -> String {
        table(
            ["FIELD", "VALUE"],
            [
                ["name", p.name], ["path", p.path],
                [
                    "capacity",
                    "\(ByteSize.format(p.capacityBytes)) (\(p.capacityBytes) bytes\(p.capacityExplicit ? "" : ", filesystem size"))",
                ],
                ["used", "\(ByteSize.format(p.usedBytes)) (\(percent(p.usedPercent)))"],
                ["provisioned", ByteSize.format(p.provisionedBytes)], ["free", ByteSize.format(p.freeBytes)],
                [
                    "filesystem",
                    "\(ByteSize.format(p.filesystemBytes)), \(ByteSize.format(p.filesystemFreeBytes)) free"
                        + (p.sharesFilesystemWith.isEmpty
                            ? "" : " (shared with pools \(p.sharesFilesystemWith.joined(separator: ", ")))")
                        + (p.exceedsFilesystem ? "; the capacity exceeds what it can give" : ""),
                ],
                ["overcommit", "\(ratio(p.overcommitRatio)) of max \(ratio(p.maxOvercommit))"],
                ["state", p.state.rawValue], ["overprovisioned", p.overprovisioned ? "yes" : "no"],
                [
                    "thresholds",
                    "warn \(percent(p.warnPercent)), critical \(percent(p.criticalPercent)), reserved \(percent(p.reservedPercent))",
                ],
                ["volumes", "\(p.volumeCount)"],
            ])
    }

    static func volumeDetail(_ v: VolumeInfo) -> String {
        var rows: [[String]] = [
            ["volume", "\(v.pool)/\(v.name)"], ["size", "\(ByteSize.describe(v.sizeBytes))"],
            ["allocated", "\(ByteSize.describe(v.allocatedBytes))"],
            ["provisioning", v.provisioning.rawValue], ["format", v.format.rawValue], ["block size", "\(v.blockSize)"],
            ["state", v.state.rawValue + (v.error.map { " (\($0); after checking: depot volume clear-error)" } ?? "")],
            ["uuid", v.uuid], ["path", v.path], ["created", v.createdAt],
        ]
        if let progress = v.progress, progress.isFinite {
            rows.append([
                "progress",
                "\(Int(max(0, min(progress, 1)) * 100)) % zeroed (cancel: depot volume delete \(v.pool)/\(v.name) --force)",
            ])
        }
        if let luns = v.luns {
            let text: [String] = luns.map { lun in "\(lun.target) LUN \(lun.lun)" + (lun.readOnly ? " (read-only)" : "")
            }
            rows.append(["luns", text.isEmpty ? "none" : text.joined(separator: ", ")])
        }
        if let exported = v.exported {
            rows.append(["nfs export", exported ? "its pool \(v.pool) is exported" : "no"])
        }
        if let base = v.base { rows.append(["base", base]) }
        if let count = v.snapshotCount, count > 0 {
            rows.append(["snapshots", "\(count), \(ByteSize.describe(v.snapshotBytes ?? 0)) allocated"])
        }
        return table(["FIELD", "VALUE"], rows)
    }

    static func snapshotTable(_ list: [SnapshotInfo]) -> String {
        table(
            ["SNAPSHOT", "STATE", "SIZE", "ALLOCATED", "UNIQUE", "PARENT", "CREATED"],
            list.map {
                [
                    "\($0.pool)/\($0.volume)@\($0.name)", $0.state, ByteSize.describe($0.sizeBytes),
                    ByteSize.describe($0.allocatedBytes), ByteSize.describe($0.uniqueBytes), $0.parent ?? "-",
                    $0.createdAt,
                ]
            }, rightAligned: [2, 3, 4])
    }

    static func snapshotDetail(_ s: SnapshotInfo) -> String {
        table(
            ["FIELD", "VALUE"],
            [
                ["snapshot", "\(s.pool)/\(s.volume)@\(s.name)"], ["state", s.state],
                ["size", ByteSize.describe(s.sizeBytes)], ["allocated", ByteSize.describe(s.allocatedBytes)],
                ["unique", ByteSize.describe(s.uniqueBytes) + " (what deleting it frees)"],
                ["parent", s.parent ?? "none"],
                ["dependents", s.dependents.isEmpty ? "none" : s.dependents.joined(separator: ", ")],
                ["clones", s.clones.isEmpty ? "none" : s.clones.joined(separator: ", ")],
                ["format", s.format.rawValue], ["uuid", s.uuid], ["path", s.path], ["created", s.createdAt],
            ])
    }

    static func jobTable(_ jobs: [JobInfo]) -> String {
        table(
            ["ID", "KIND", "OBJECT", "STATE", "DONE", "RATE", "ETA"],
            jobs.map {
                [
                    $0.id, $0.kind, $0.object, $0.state.rawValue, percent($0.percent),
                    ByteSize.describe($0.rateBytesPerSecond) + "/s", $0.etaSeconds.map { "\($0) s" } ?? "-",
                ]
            }, rightAligned: [4, 5, 6])
    }

    static func tokenTable(_ tokens: [TokenInfo]) -> String {
        table(
            ["NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED"],
            tokens.map {
                [$0.name, $0.role.rawValue, $0.state, $0.createdAt, $0.expiresAt ?? "never", $0.lastUsedAt ?? "never"]
            })
    }

    static func auditTable(_ entries: [AuditEntry]) -> String {
        table(
            ["TIME", "CLIENT", "TOKEN", "ACTION", "OBJECT", "STATUS", "OUTCOME"],
            entries.map {
                [
                    $0.time, $0.client, $0.token ?? "-", $0.action, $0.object, $0.status == 0 ? "-" : "\($0.status)",
                    $0.outcome,
                ]
            })
    }

    static func jobDetail(_ j: JobInfo) -> String {
        var rows: [[String]] = [
            ["job", j.id], ["kind", j.kind], ["object", j.object], ["state", j.state.rawValue],
            [
                "done",
                "\(percent(j.percent)) (\(ByteSize.describe(j.bytesDone)) of \(ByteSize.describe(j.bytesTotal)))",
            ],
            ["rate", ByteSize.describe(j.rateBytesPerSecond) + "/s"],
            ["limit", j.limitBytesPerSecond == 0 ? "none" : ByteSize.describe(j.limitBytesPerSecond) + "/s"],
            ["eta", j.etaSeconds.map { "\($0) s" } ?? "-"], ["created", j.createdAt], ["updated", j.updatedAt],
        ]
        if let finished = j.finishedAt { rows.append(["finished", finished]) }
        if let error = j.error { rows.append(["error", error]) }
        return table(["FIELD", "VALUE"], rows)
    }
}
