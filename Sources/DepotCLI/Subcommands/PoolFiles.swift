import ArgumentParser
import DepotCore

struct PoolFiles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files", abstract: "List the disk images in a pool's directory that Depot does not manage.",
        discussion: """
            Disks a hypervisor created on an NFS datastore Depot exports (raw, qcow2, VMDK, VHD, \
            VHDX), as the last rescan found them: their virtual sizes count in the pool's \
            provisionedBytes (a backing file or VMDK extent once, with the disk built on it), their \
            allocation in usedBytes. A file that cannot be read is listed with the reason and counts \
            by its allocation only. Depot never changes or deletes them. `depot pool rescan` reads \
            them again now.
            """)
    @Argument(help: "Pool name.") var name: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(name, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let files = try await global.client().get(
                "/v1/pools/\(name)/files", as: ForeignDiskList.self
            ).files
            if global.json {
                try Output.json(ForeignDiskList(files: files))
                return
            }
            guard !files.isEmpty else {
                print("no foreign disks in pool \(name)")
                return
            }
            let rows = files.map { f in
                [
                    f.path, f.format, f.virtualSizeBytes.map(ByteSize.format) ?? "-", ByteSize.format(f.allocatedBytes),
                    f.backs ? "part of a chain" : (f.backing ?? "-"), f.modifiedAt, f.problem ?? "",
                ]
            }
            print(
                Output.table(
                    ["FILE", "FORMAT", "VIRTUAL", "ALLOCATED", "BACKING", "CHANGED", "PROBLEM"], rows,
                    rightAligned: [2, 3]))
        }
    }
}

struct PoolRescan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rescan", abstract: "Read every file of the pools again now (volumes, layers, foreign disks).")
    @Argument(help: "Pool name.") var name: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(name, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let pool = try await global.client().post(
                "/v1/pools/\(name)/rescan", [String: String](), as: PoolInfo.self)
            if global.json { try Output.json(pool) } else { print(Output.poolDetail(pool)) }
        }
    }
}
