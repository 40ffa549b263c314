import DepotCatalog
import DepotCore
import DepotStorage
import Foundation
import Logging

/// A StorageManager over an in-memory catalog and a real temporary directory.
struct StorageFixture {
    let root: String
    let catalog: Catalog
    let storage: StorageManager

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-storage-\(UUID())").path
        try FileManager.default.createDirectory(atPath: root + "/pools", withIntermediateDirectories: true)
        catalog = try Catalog.inMemory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        storage = StorageManager(catalog: catalog, poolsDirectory: root + "/pools", logger: logger)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    func files(in pool: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/pools/" + pool)) ?? []).sorted()
    }

    /// Writes `bytes` at `offset` into a file the way an initiator's WRITE would.
    func write(_ path: String, offset: UInt64, bytes: [UInt8]) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
        try handle.synchronize()
        try handle.close()
    }
}

import Testing
