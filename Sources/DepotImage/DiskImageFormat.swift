/// The format of a disk image, told by its content, never by its name: the
/// magic numbers of qcow2 (qcow2.rst: "QFI\xfb" at 0), VMDK (the sparse
/// extent header's "KDMV" at 0, or a text descriptor that starts with
/// "# Disk DescriptorFile"), VHDX ("vhdxfile" at 0, the file type
/// identifier of MS-VHDX §2.2.1) and VHD (the "conectix" cookie of the
/// footer: the last 512 bytes of every VHD, and its copy at 0 in a dynamic
/// one). Anything else is raw.
public enum DiskImageFormat: String, Sendable, CaseIterable {
    case raw, qcow2, vmdk, vhdx, vhd

    /// Bytes of the file's start a probe looks at.
    public static let headBytes = 64
    /// Bytes of the file's end a probe looks at (a VHD footer).
    public static let tailBytes = 512

    /// `head`: the first bytes of the file (up to `headBytes`); `tail`: its
    /// last `tailBytes` bytes when it has that many.
    public static func probe(head: [UInt8], tail: [UInt8]) -> DiskImageFormat {
        if head.starts(with: [0x51, 0x46, 0x49, 0xFB]) { return .qcow2 }
        if head.starts(with: Array("KDMV".utf8)) || head.starts(with: Array("# Disk DescriptorFile".utf8)) {
            return .vmdk
        }
        if head.starts(with: Array("vhdxfile".utf8)) { return .vhdx }
        let cookie = Array("conectix".utf8)
        if head.starts(with: cookie) || (tail.count == tailBytes && tail.starts(with: cookie)) { return .vhd }
        return .raw
    }
}
