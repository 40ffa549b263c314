/// How a volume's blocks are reserved (vSphere's three disk formats).
public enum Provisioning: String, Codable, Sendable, CaseIterable {
    /// Sparse file: blocks are allocated as they are written.
    case thin
    /// `fallocate(2)`: every block reserved at creation, zeroed lazily by the filesystem.
    case thick
    /// Reserved and zero-written at creation (vSphere "eager zeroed thick").
    case eagerZeroed = "eager-zeroed"

    /// Thick kinds reserve space up front, so admission checks free space.
    public var reservesSpace: Bool { self != .thin }

    public init(parsing text: String) throws(DepotError) {
        guard let value = Provisioning(rawValue: text) else {
            throw .invalidArgument("unknown provisioning '\(text)' (use thin, thick or eager-zeroed)")
        }
        self = value
    }
}

/// Logical block sizes a volume may present (SBC-3 §6.2: READ CAPACITY's
/// LOGICAL BLOCK LENGTH IN BYTES).
public enum BlockSize {
    public static let allowed: [UInt32] = [512, 4096]

    public static func validate(_ size: UInt32) throws(DepotError) {
        guard allowed.contains(size) else {
            throw .invalidArgument("block size must be 512 or 4096, got \(size)")
        }
    }
}
