import NIOCore

/// The qcow2 image header (QEMU docs/interop/qcow2.rst, "Header"): version 2
/// (compat 0.10, 72 bytes) and version 3 (compat 1.1, at least 104 bytes),
/// with the header extensions that follow it. All fields are big-endian.
///
/// Pure: `ByteBuffer.readQCOW2Header()` / `writeQCOW2Header(_:)`, no I/O, so
/// the parser is fuzzable without files. Whether an image may be opened at
/// all (unknown incompatible features, encryption, …) is `openRefusal`.
public struct QCOW2Header: Sendable, Equatable {
    public static let magic: UInt32 = 0x5146_49FB  // "QFI\xfb"

    public var version: UInt32 = 3
    public var backingFileOffset: UInt64 = 0
    public var backingFileSize: UInt32 = 0
    public var clusterBits: UInt32 = 16
    /// Virtual disk size in bytes.
    public var size: UInt64 = 0
    /// 0 none, 1 AES (legacy), 2 LUKS.
    public var cryptMethod: UInt32 = 0
    /// Entries in the active L1 table.
    public var l1Size: UInt32 = 0
    public var l1TableOffset: UInt64 = 0
    public var refcountTableOffset: UInt64 = 0
    public var refcountTableClusters: UInt32 = 0
    public var snapshotCount: UInt32 = 0
    public var snapshotsOffset: UInt64 = 0
    // Version 3 only (version 2 reads as all zero, refcount order 4).
    public var incompatibleFeatures: UInt64 = 0
    public var compatibleFeatures: UInt64 = 0
    public var autoclearFeatures: UInt64 = 0
    /// Refcount width is `1 << refcountOrder` bits (version 2: always 16).
    public var refcountOrder: UInt32 = 4
    /// Length of the header proper; extensions start here (version 2: 72).
    public var headerLength: UInt32 = 104
    /// Byte 104 of a version 3 header of 112 bytes or more: 0 deflate, 1 zstd.
    public var compressionType: UInt8 = 0

    /// The header extensions (qcow2.rst "Header extensions"), in file order.
    public var extensions: [QCOW2HeaderExtension] = []

    public init() {}

    public var clusterSize: Int { 1 << Int(clusterBits) }
    public var refcountBits: Int { 1 << Int(refcountOrder) }

    /// The backing file format name extension (0xe2792aca), if present.
    public var backingFormat: String? {
        extensions.first { $0.type == QCOW2HeaderExtension.backingFormat }
            .map { String(decoding: $0.data, as: UTF8.self) }
    }

    // Incompatible feature bits (qcow2.rst, header bytes 72-79).
    public static let dirtyBit: UInt64 = 1 << 0
    public static let corruptBit: UInt64 = 1 << 1
    public static let externalDataFileBit: UInt64 = 1 << 2
    public static let compressionTypeBit: UInt64 = 1 << 3
    public static let extendedL2Bit: UInt64 = 1 << 4
    /// Compatible feature bit 0: lazy refcounts (refcounts may be stale when dirty).
    public static let lazyRefcountsBit: UInt64 = 1 << 0

    public var isDirty: Bool { incompatibleFeatures & Self.dirtyBit != 0 }
    public var isCorrupt: Bool { incompatibleFeatures & Self.corruptBit != 0 }

    /// Why Depot will not open this image, naming the feature; nil when it may.
    /// The dirty bit is not a refusal: the opener rebuilds refcounts first.
    public var openRefusal: String? {
        if isCorrupt {
            return "the image is marked corrupt (incompatible feature bit 1); repair it with qemu-img check -r"
        }
        if cryptMethod != 0 {
            return "the image is encrypted (\(cryptMethod == 2 ? "LUKS" : "AES")); Depot serves unencrypted images only"
        }
        if incompatibleFeatures & Self.externalDataFileBit != 0 {
            return "the image keeps its data in an external data file"
        }
        if incompatibleFeatures & Self.compressionTypeBit != 0, compressionType != 0 {
            return
                "the image's compressed clusters use zstd (compression type \(compressionType)); only deflate is read"
        }
        if incompatibleFeatures & Self.extendedL2Bit != 0 { return "the image uses extended L2 entries (subclusters)" }
        let unknown =
            incompatibleFeatures
            & ~(Self.dirtyBit | Self.corruptBit | Self.externalDataFileBit
            | Self.compressionTypeBit | Self.extendedL2Bit)
        if unknown != 0 {
            let bits = (0..<64).filter { unknown & (1 << UInt64($0)) != 0 }
            let names = bits.map { bit in featureName(incompatibleBit: bit).map { "\(bit) (\($0))" } ?? "\(bit)" }
            return "the image has unknown incompatible feature bit(s) \(names.joined(separator: ", "))"
        }
        return nil
    }

    /// A feature's name from the image's feature name table, if it has one.
    public func featureName(incompatibleBit bit: Int) -> String? {
        guard let table = extensions.first(where: { $0.type == QCOW2HeaderExtension.featureNameTable }) else {
            return nil
        }
        // Entries of 48 bytes: type (0 incompatible), bit number, 46-byte name.
        var offset = 0
        while offset + 48 <= table.data.count {
            if table.data[offset] == 0, Int(table.data[offset + 1]) == bit {
                let name = table.data[(offset + 2)..<(offset + 48)].prefix { $0 != 0 }
                return String(decoding: name, as: UTF8.self)
            }
            offset += 48
        }
        return nil
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case truncated, badMagic, unsupportedVersion(UInt32), invalid(String)

        public var description: String {
            switch self {
            case .truncated: "not a qcow2 image: the header is truncated"
            case .badMagic: "not a qcow2 image: no QFI\\xfb magic"
            case .unsupportedVersion(let v): "qcow2 version \(v) is not supported (2 and 3 are)"
            case .invalid(let why): "invalid qcow2 header: \(why)"
            }
        }
    }
}

/// One header extension: type, data (qcow2.rst "Header extensions").
public struct QCOW2HeaderExtension: Sendable, Equatable {
    public static let end: UInt32 = 0
    public static let backingFormat: UInt32 = 0xE279_2ACA
    public static let featureNameTable: UInt32 = 0x6803_F857
    public static let bitmaps: UInt32 = 0x2385_2875
    public static let fullDiskEncryption: UInt32 = 0x0537_BE77
    public static let externalDataFile: UInt32 = 0x4441_5441

    public var type: UInt32
    public var data: [UInt8]

    public init(type: UInt32, data: [UInt8]) {
        self.type = type
        self.data = data
    }
}

extension ByteBuffer {
    /// Reads a qcow2 header and its extensions from the start of an image
    /// (the buffer holds at least the first cluster, or the whole header
    /// area). Every field is checked against the limits the format and a
    /// sane image imply before anything uses it: the peer here is a file
    /// anyone may have written.
    public mutating func readQCOW2Header() throws(QCOW2Header.ParseError) -> QCOW2Header {
        let start = readerIndex
        func u32(_ at: Int) -> UInt32? { getInteger(at: start + at, as: UInt32.self) }
        func u64(_ at: Int) -> UInt64? { getInteger(at: start + at, as: UInt64.self) }
        guard let magic = u32(0), let version = u32(4) else { throw .truncated }
        guard magic == QCOW2Header.magic else { throw .badMagic }
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        var h = QCOW2Header()
        h.version = version
        guard let backingOffset = u64(8), let backingSize = u32(16), let clusterBits = u32(20), let size = u64(24),
            let crypt = u32(32), let l1Size = u32(36), let l1Offset = u64(40), let refcountOffset = u64(48),
            let refcountClusters = u32(56), let snapshots = u32(60), let snapshotsOffset = u64(64)
        else { throw .truncated }
        (h.backingFileOffset, h.backingFileSize, h.clusterBits, h.size) = (
            backingOffset, backingSize, clusterBits, size
        )
        (h.cryptMethod, h.l1Size, h.l1TableOffset) = (crypt, l1Size, l1Offset)
        (h.refcountTableOffset, h.refcountTableClusters) = (refcountOffset, refcountClusters)
        (h.snapshotCount, h.snapshotsOffset) = (snapshots, snapshotsOffset)
        if version == 3 {
            guard let incompatible = u64(72), let compatible = u64(80), let autoclear = u64(88),
                let order = u32(96), let length = u32(100)
            else { throw .truncated }
            (h.incompatibleFeatures, h.compatibleFeatures, h.autoclearFeatures) = (incompatible, compatible, autoclear)
            (h.refcountOrder, h.headerLength) = (order, length)
            guard length >= 104, length % 8 == 0 || length == 104 else {
                throw .invalid("header length \(length)")
            }
            if length >= 112, let type = getInteger(at: start + 104, as: UInt8.self) { h.compressionType = type }
        } else {
            (h.refcountOrder, h.headerLength) = (4, 72)
        }
        // qcow2.rst: cluster_bits 9..21 (QEMU refuses others); refcount_order 0..6.
        guard (9...21).contains(h.clusterBits) else { throw .invalid("cluster bits \(h.clusterBits)") }
        guard h.refcountOrder <= 6 else { throw .invalid("refcount order \(h.refcountOrder)") }
        let cluster = UInt64(h.clusterSize)
        guard h.l1TableOffset % cluster == 0, h.refcountTableOffset % cluster == 0 else {
            throw .invalid("a table offset is not cluster aligned")
        }
        // Every guest cluster has an L2 entry: the L1 table must be able to reach the size.
        let perL2 = cluster / 8
        let (span, overflow) = perL2.multipliedReportingOverflow(by: cluster)
        let needed = overflow ? 1 : (h.size + span - 1) / span
        // QEMU's own limits (qcow2.h: QCOW_MAX_L1_SIZE 32 MiB, QCOW_MAX_REFTABLE_SIZE
        // 8 MiB): an opener allocates both tables whole, so a file must not choose their size.
        guard UInt64(h.l1Size) >= needed, UInt64(h.l1Size) * 8 <= 32 << 20 else {
            throw .invalid("L1 size \(h.l1Size)")
        }
        guard h.refcountTableClusters >= 1, UInt64(h.refcountTableClusters) * cluster <= 8 << 20 else {
            throw .invalid("refcount table of \(h.refcountTableClusters) clusters")
        }
        guard h.backingFileSize <= 1023 else { throw .invalid("backing file name of \(h.backingFileSize) bytes") }

        // Header extensions, each padded to 8 bytes, until the end marker.
        var at = Int(h.headerLength)
        while true {
            guard let type = u32(at), let length = u32(at + 4) else { throw .truncated }
            if type == QCOW2HeaderExtension.end { break }
            let padded = (Int(length) + 7) & ~7
            guard length <= 1 << 16, let data = getBytes(at: start + at + 8, length: Int(length)) else {
                throw .invalid("header extension \(String(type, radix: 16)) of \(length) bytes")
            }
            h.extensions.append(QCOW2HeaderExtension(type: type, data: data))
            at += 8 + padded
            guard h.extensions.count <= 64 else { throw .invalid("more than 64 header extensions") }
        }
        moveReaderIndex(to: start + at + 8)
        return h
    }

    /// Writes `header` and its extensions (and the end marker), as the first
    /// bytes of an image; returns the bytes written.
    @discardableResult
    public mutating func writeQCOW2Header(_ h: QCOW2Header) -> Int {
        let start = writerIndex
        writeInteger(QCOW2Header.magic)
        writeInteger(h.version)
        writeInteger(h.backingFileOffset)
        writeInteger(h.backingFileSize)
        writeInteger(h.clusterBits)
        writeInteger(h.size)
        writeInteger(h.cryptMethod)
        writeInteger(h.l1Size)
        writeInteger(h.l1TableOffset)
        writeInteger(h.refcountTableOffset)
        writeInteger(h.refcountTableClusters)
        writeInteger(h.snapshotCount)
        writeInteger(h.snapshotsOffset)
        if h.version >= 3 {
            writeInteger(h.incompatibleFeatures)
            writeInteger(h.compatibleFeatures)
            writeInteger(h.autoclearFeatures)
            writeInteger(h.refcountOrder)
            writeInteger(h.headerLength)
            if h.headerLength >= 112 {
                writeInteger(h.compressionType)
                writeRepeatingByte(0, count: Int(h.headerLength) - 105)
            }
        }
        for ext in h.extensions {
            writeInteger(ext.type)
            writeInteger(UInt32(ext.data.count))
            writeBytes(ext.data)
            writeRepeatingByte(0, count: (8 - ext.data.count % 8) % 8)
        }
        writeInteger(QCOW2HeaderExtension.end)
        writeInteger(UInt32(0))
        return writerIndex - start
    }
}
