/// How a volume's data is stored in its file: a raw image (byte for byte
/// the disk) or a qcow2 image (QEMU's format: thin, the base of snapshots
/// and clones; every file readable by `qemu-img`).
public enum VolumeFormat: String, Codable, Sendable, CaseIterable {
    case raw
    case qcow2

    public init(parsing text: String) throws(DepotError) {
        guard let value = VolumeFormat(rawValue: text) else {
            throw .invalidArgument("unknown format '\(text)' (use raw or qcow2)")
        }
        self = value
    }

    /// The file name extension of a volume in this format.
    public var fileExtension: String { self == .raw ? "img" : "qcow2" }
}
