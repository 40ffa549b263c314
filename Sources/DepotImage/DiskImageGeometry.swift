import NIOCore

/// The virtual size of a disk image and the other files it is made of, read
/// from its metadata (pure: the caller hands in a reader of the file's
/// bytes, which returns nil past the end or on an error). Used to count
/// disks a hypervisor put in a pool's directory.
public struct DiskImageGeometry: Equatable, Sendable {
    /// Bytes the guest sees.
    public var virtualSize: UInt64
    /// Files this one reads through (a qcow2 backing file, a VMDK parent),
    /// as named (relative to this file's directory unless absolute).
    public var backing: [String] = []
    /// Files holding this disk's data (a VMDK descriptor's extents).
    public var extents: [String] = []

    public init(virtualSize: UInt64, backing: [String] = [], extents: [String] = []) {
        self.virtualSize = virtualSize
        self.backing = backing
        self.extents = extents
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case truncated(String), invalid(String)

        public var description: String {
            switch self {
            case .truncated(let what): "truncated: \(what) is missing"
            case .invalid(let what): "invalid: \(what)"
            }
        }
    }

    public typealias Reader = (_ offset: UInt64, _ count: Int) -> [UInt8]?

    /// `size`: the file's length in bytes.
    public static func read(_ format: DiskImageFormat, size: UInt64, reader: Reader) throws(Problem)
        -> DiskImageGeometry
    {
        switch format {
        case .raw: return DiskImageGeometry(virtualSize: size)
        case .qcow2: return try qcow2(reader)
        case .vmdk: return try vmdk(size: size, reader)
        case .vhd: return try vhd(size: size, reader)
        case .vhdx: return try vhdx(reader)
        }
    }

    static func qcow2(_ reader: Reader) throws(Problem) -> DiskImageGeometry {
        guard let head = reader(0, 4096), head.count >= 72 else { throw .truncated("the qcow2 header") }
        var buffer = ByteBuffer(bytes: head)
        let header: QCOW2Header
        do { header = try buffer.readQCOW2Header() } catch { throw .invalid("qcow2 header: \(error)") }
        var geometry = DiskImageGeometry(virtualSize: header.size)
        if header.backingFileOffset != 0, header.backingFileSize > 0 {
            guard header.backingFileSize <= 1023,
                let name = reader(header.backingFileOffset, Int(header.backingFileSize)),
                name.count == Int(header.backingFileSize)
            else { throw .truncated("the backing file name") }
            geometry.backing = [String(decoding: name, as: UTF8.self)]
        }
        return geometry
    }

    /// A sparse extent ("KDMV", VMware's Virtual Disk Format 1.1, §"Hosted
    /// Sparse Extent Header": capacity in sectors at byte 12) or a text
    /// descriptor (its extent lines `RW 2097152 FLAT "x-flat.vmdk" 0`, and
    /// `parentFileNameHint` for a delta disk).
    static func vmdk(size: UInt64, _ reader: Reader) throws(Problem) -> DiskImageGeometry {
        guard let head = reader(0, 512), head.count >= 4 else { throw .truncated("the VMDK header") }
        if head.starts(with: Array("KDMV".utf8)) {
            guard head.count >= 20 else { throw .truncated("the sparse extent header") }
            let sectors = head[12..<20].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let (bytes, overflow) = sectors.multipliedReportingOverflow(by: 512)
            guard !overflow else { throw .invalid("a capacity of \(sectors) sectors") }
            return DiskImageGeometry(virtualSize: bytes)
        }
        guard size <= 1 << 20, let text = reader(0, Int(size)) else { throw .invalid("a VMDK descriptor over 1 MiB") }
        var geometry = DiskImageGeometry(virtualSize: 0)
        for line in String(decoding: text, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if let access = words.first, ["RW", "RDONLY", "NOACCESS"].contains(access), words.count >= 3 {
                guard let sectors = UInt64(words[1]) else { throw .invalid("extent line '\(line.prefix(80))'") }
                let (bytes, overflow) = sectors.multipliedReportingOverflow(by: 512)
                let (sum, overflow2) = geometry.virtualSize.addingReportingOverflow(bytes)
                guard !overflow, !overflow2 else { throw .invalid("extent sizes that overflow") }
                geometry.virtualSize = sum
                if let name = quoted(line) { geometry.extents.append(name) }
            } else if line.hasPrefix("parentFileNameHint"), let name = quoted(line) {
                geometry.backing.append(name)
            }
        }
        guard !geometry.extents.isEmpty else { throw .invalid("a VMDK descriptor without extents") }
        return geometry
    }

    static func quoted(_ line: Substring) -> String? {
        guard let open = line.firstIndex(of: "\""),
            let close = line[line.index(after: open)...].firstIndex(of: "\"")
        else { return nil }
        return String(line[line.index(after: open)..<close])
    }

    /// The footer (the last 512 bytes; MS "Virtual Hard Disk Image Format
    /// Specification": cookie "conectix", Current Size big-endian at 48).
    static func vhd(size: UInt64, _ reader: Reader) throws(Problem) -> DiskImageGeometry {
        let cookie = Array("conectix".utf8)
        var footer = size >= 512 ? reader(size - 512, 512) : nil
        if footer.map({ !$0.starts(with: cookie) }) ?? true { footer = reader(0, 512) }
        guard let footer, footer.count >= 56, footer.starts(with: cookie) else { throw .truncated("the VHD footer") }
        return DiskImageGeometry(virtualSize: footer[48..<56].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// MS-VHDX §2.2.2–2.2.3 and §2.6.2.3: the region table at 192 KiB names
    /// the metadata region, whose table names the Virtual Disk Size item.
    static func vhdx(_ reader: Reader) throws(Problem) -> DiskImageGeometry {
        let metadataRegion = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
        let virtualDiskSize = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
        guard let table = reader(192 << 10, 16 + 32 * 64), table.count >= 16, table.starts(with: Array("regi".utf8))
        else { throw .truncated("the VHDX region table") }
        let entries = min(Int(le32(table, 8)), (table.count - 16) / 32)
        var region: (offset: UInt64, length: UInt32)?
        for i in 0..<entries {
            let at = 16 + 32 * i
            if Array(table[at..<(at + 16)]) == metadataRegion {
                region = (le64(table, at + 16), le32(table, at + 24))
            }
        }
        guard let region else { throw .invalid("no metadata region in the VHDX region table") }
        guard let metadata = reader(region.offset, Int(min(region.length, 64 << 10))), metadata.count >= 32,
            metadata.starts(with: Array("metadata".utf8))
        else { throw .truncated("the VHDX metadata table") }
        let count = min(Int(le16(metadata, 10)), (metadata.count - 32) / 32)
        for i in 0..<count {
            let at = 32 + 32 * i
            guard Array(metadata[at..<(at + 16)]) == virtualDiskSize else { continue }
            let (offset, overflow) = region.offset.addingReportingOverflow(UInt64(le32(metadata, at + 16)))
            guard !overflow, let item = reader(offset, 8), item.count == 8 else {
                throw .truncated("the VHDX virtual disk size")
            }
            return DiskImageGeometry(virtualSize: le64(item, 0))
        }
        throw .invalid("no virtual disk size in the VHDX metadata")
    }

    /// A GUID's on-disk bytes: the first three fields little-endian.
    static func guid(_ text: String) -> [UInt8] {
        let hex = text.filter { $0 != "-" }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes[0..<4].reversed() + bytes[4..<6].reversed() + bytes[6..<8].reversed() + bytes[8...]
    }

    static func le16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func le64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
}
