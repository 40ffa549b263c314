/// What a start-up reconcile of catalog against files found and did.
/// Nothing here was deleted except the files of volumes whose creation or
/// deletion a crash interrupted (their rows said so).
public struct ReconcileReport: Codable, Sendable, Equatable {
    /// `POOL/NAME` of volumes whose file is gone; marked `missing`.
    public var missingVolumes: [String] = []
    /// Files in a pool directory the catalog does not know; reported, never deleted.
    public var unknownFiles: [String] = []
    /// Creations a crash interrupted: partial file and row removed.
    public var rolledBackCreates: [String] = []
    /// Deletions a crash interrupted: finished.
    public var finishedDeletes: [String] = []
    /// Resizes and renames a crash interrupted: finished or rolled back.
    public var repairedIntents: [String] = []
    /// Volumes whose file size differs from the catalog's.
    public var sizeMismatches: [String] = []
    /// Pools whose directory is gone.
    public var missingPoolDirectories: [String] = []

    public init() {}

    /// How many things the reconcile reported, all kinds together.
    public var findingCount: Int {
        missingVolumes.count + unknownFiles.count + rolledBackCreates.count + finishedDeletes.count
            + repairedIntents.count
            + sizeMismatches.count + missingPoolDirectories.count
    }

    public var isClean: Bool { findingCount == 0 }
}
