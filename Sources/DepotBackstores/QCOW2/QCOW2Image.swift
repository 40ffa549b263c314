import DepotBlock
import DepotImage
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What opening or using a qcow2 image can fail with, naming the file.
public enum QCOW2Error: Error, CustomStringConvertible, Equatable {
    /// The image is valid but uses something Depot does not serve (named).
    case refused(path: String, why: String)
    /// The image contradicts itself; it stays offline rather than serve garbage.
    case corrupt(path: String, why: String)

    public var description: String {
        switch self {
        case .refused(let path, let why): "cannot serve \(path): \(why)"
        case .corrupt(let path, let why): "\(path) is corrupt: \(why)"
        }
    }
}

/// One qcow2 file of a chain (QEMU docs/interop/qcow2.rst), read and written
/// by guest offset. Blocking: the device runs it on the I/O threads.
///
/// Reads of unallocated clusters fall through to the backing layer (qcow2 or
/// raw), zeros at the bottom. The first write to a cluster allocates it here
/// and copies the untouched part up from below, in one write of the whole
/// cluster. Allocation and L2 updates are serialized per image (`lock`);
/// reads and overwrites of allocated clusters only look up under it.
///
/// Crash safety — the order of what reaches the disk:
/// 1. Refcounts first: new host clusters come from the end of the file,
///    extended a batch at a time (a hole, refcount 0: free space to qemu-img
///    check). Taking one sets its refcount to 1 in the cached refcount
///    block; every table write (flush, cache eviction) first writes the
///    changed refcount blocks and fdatasyncs — as QEMU orders its refcount
///    and L2 caches — so no durable table references a cluster whose
///    refcount is not durable. A batch that needs a new refcount block
///    fdatasyncs it before the refcount table points at it. A crash leaves
///    at most refcounts nobody references: leaked, never corrupt.
/// 2. Data before tables: a cluster's data is written before its L2 entry
///    changes in memory; `flush` copies the dirty tables, fdatasyncs (every
///    cluster those copies reference is then durable), writes the tables
///    and the L1 table, and fdatasyncs again. So no durable table ever
///    points at data that is not.
/// 3. Frees last: a cluster an UNMAP let go loses its refcount (and its
///    blocks) only after the tables that no longer reference it are durable.
/// Writes not followed by a flush may be lost in a crash (a volatile write
/// cache); writes a completed flush covered are not.
final class QCOW2Image: ChainLayer, @unchecked Sendable {
    let file: ImageFile
    let header: QCOW2Header
    let backing: (any ChainLayer)?
    let writable: Bool
    let clusterBits: UInt32
    let clusterSize: Int
    /// Entries per L2 table, and refcounts per refcount block.
    let l2Entries: Int
    let refcountsPerBlock: Int
    /// Clusters the file is extended by at a time.
    let reservationBatch: Int
    let l2CacheBytes: Int
    /// The fast lane's writes into this file.
    let inline = InlineWrites()

    /// The guest size (grows with `grow`; read without the lock by the layer above).
    var size: UInt64 { guestSize.load(ordering: .acquiring) }
    let guestSize: Synchronization.Atomic<UInt64>
    /// Where the L1 table is (moves when `grow` needs a larger one).
    var l1Offset: UInt64
    var chain: [String] { [file.path] + (backing?.chain ?? []) }

    // Everything below is guarded by `lock`.
    let lock = NIOLock()
    var l1: [UInt64]
    private var l1Dirty = false
    var l2Cache: [UInt64: L2Table] = [:]
    private var l2Clock: UInt64 = 0
    /// Tables a flush has taken and not yet written (kept in the cache).
    private var tablesInFlight: Set<UInt64> = []
    /// Closed: its locks given back; a second close does nothing.
    private var closed = false
    /// One flush at a time: two could write one table's copies out of order.
    let flushing = NIOLock()
    var refcountTable: [UInt64]
    private var refcountTableDirty = false
    private var refblocks: [UInt64: [UInt8]] = [:]
    /// Cached refcount blocks changed since they were last written.
    private var dirtyRefblocks: Set<UInt64> = []
    /// Host clusters inside the file past every used one, refcount 0, their
    /// refcount blocks cached: taken in order (ascending).
    var reserved: [UInt64] = []
    /// Where the next reservation starts (cluster aligned, past everything).
    private var fileEnd: UInt64
    /// Host clusters that lose one reference each once the tables that
    /// dropped them are durable (freed, and their blocks punched, at 0).
    var pendingFrees: [UInt64] = []
    /// Guest clusters written or unmapped since a commit began tracking
    /// (nil: not tracking). `noteWrite` under the lock on every write path.
    var writesSeen: Set<UInt64>?

    func noteWrite(_ cluster: UInt64) {
        if writesSeen != nil { writesSeen!.insert(cluster) }
    }

    struct L2Table {
        var entries: [UInt64]
        var dirty: Bool
        var used: UInt64
    }

    /// The deepest chain opened (qcow2.rst sets none; QEMU's is its stack).
    static let maxDepth = 64

    /// `below`: the open image of the layer this one names as its backing
    /// file, read from its tables in memory instead of opening the file
    /// again — the overlay a snapshot puts on a qcow2 layer whose tables
    /// are still being written back (`VolumeDevice.OldFlush.later`). It
    /// must be that file (same inode), and is only read from here on.
    init(path: String, writable: Bool, l2CacheBytes: Int = 32 << 20, depth: Int = 0, below: QCOW2Image? = nil) throws {
        guard depth < Self.maxDepth else {
            throw QCOW2Error.refused(path: path, why: "the backing chain is deeper than \(Self.maxDepth) layers")
        }
        let file = try ImageFile(path: path, writable: writable)
        self.file = file
        var head = ByteBuffer(bytes: try file.read(at: 0, count: Int(min(file.size, 2 << 20))))
        let header: QCOW2Header
        do { header = try head.readQCOW2Header() } catch {
            throw QCOW2Error.refused(path: path, why: error.description)
        }
        if let why = header.openRefusal { throw QCOW2Error.refused(path: path, why: why) }
        if writable, header.isDirty {
            throw QCOW2Error.refused(
                path: path, why: "the dirty bit is set (lazy refcounts, not closed cleanly); run qemu-img check -r all")
        }
        if writable, header.snapshotCount > 0 {
            throw QCOW2Error.refused(
                path: path,
                why: "it has \(header.snapshotCount) internal snapshot(s); Depot writes only images without them")
        }
        if writable, header.refcountOrder > 6 || header.refcountBits < 1 {
            throw QCOW2Error.refused(path: path, why: "refcount order \(header.refcountOrder)")
        }
        self.header = header
        self.writable = writable
        clusterBits = header.clusterBits
        clusterSize = header.clusterSize
        l2Entries = clusterSize / 8
        refcountsPerBlock = clusterSize * 8 / header.refcountBits
        reservationBatch = max(4, (32 << 20) / clusterSize)
        self.l2CacheBytes = max(l2CacheBytes, 4 * clusterSize)
        // The tables and the backing file's name lie inside the file, the
        // tables cluster-aligned (qcow2.rst; QEMU's qcow2_validate_table): a
        // hostile header cannot make Depot read past it or without bound.
        func inside(_ offset: UInt64, bytes: UInt64, aligned: Bool, _ what: String) throws {
            guard !aligned || offset % UInt64(header.clusterSize) == 0, offset <= file.size, bytes <= file.size - offset
            else {
                throw QCOW2Error.corrupt(
                    path: path, why: "\(what) at offset \(offset) (\(bytes) bytes) does not lie inside the file")
            }
        }
        try inside(header.l1TableOffset, bytes: UInt64(header.l1Size) * 8, aligned: true, "the L1 table")
        try inside(
            header.refcountTableOffset, bytes: UInt64(header.refcountTableClusters) * UInt64(header.clusterSize),
            aligned: true, "the refcount table")
        if header.backingFileOffset != 0 {
            try inside(
                header.backingFileOffset, bytes: UInt64(header.backingFileSize), aligned: false, "the backing name")
        }
        l1 = try Self.readTable(file, at: header.l1TableOffset, entries: Int(header.l1Size))
        l1Offset = header.l1TableOffset
        guestSize = Synchronization.Atomic(header.size)
        refcountTable = try Self.readTable(
            file, at: header.refcountTableOffset, entries: Int(header.refcountTableClusters) * clusterSize / 8)
        let cluster = UInt64(clusterSize)
        fileEnd = (file.size + cluster - 1) / cluster * cluster

        // The backing file: its name relative to this image's directory; its
        // format from the extension, else from its first bytes.
        if header.backingFileOffset != 0, header.backingFileSize > 0 {
            let nameBytes = try file.read(at: header.backingFileOffset, count: Int(header.backingFileSize))
            let name = String(decoding: nameBytes, as: UTF8.self)
            let resolved =
                name.hasPrefix("/") ? name : (URL(fileURLWithPath: path).deletingLastPathComponent().path + "/" + name)
            if let below {
                guard header.backingFormat ?? "qcow2" == "qcow2", below.file.isFile(at: resolved) else {
                    throw QCOW2Error.refused(
                        path: path, why: "its backing file \(name) is not the open layer \(below.file.path)")
                }
                below.file.renamed(to: resolved)
                backing = below
                if writable { try reclaimLeaks() }
                return
            }
            let format = try header.backingFormat ?? Self.probe(resolved)
            switch format {
            case "qcow2":
                backing = try QCOW2Image(path: resolved, writable: false, l2CacheBytes: l2CacheBytes, depth: depth + 1)
            case "raw": backing = try RawLayer(path: resolved)
            default: throw QCOW2Error.refused(path: path, why: "backing file \(name) has format \(format)")
            }
        } else {
            guard below == nil else { throw QCOW2Error.refused(path: path, why: "it names no backing file") }
            backing = nil
        }
        if writable { try reclaimLeaks() }
    }

    /// On every writable open: the references every table makes, counted
    /// against the refcounts. A cluster with a refcount and no reference
    /// (reserved before a crash, or dropped by a table write that did not
    /// happen) is leaked: its refcount goes back to what is referenced. A
    /// reference to a cluster whose refcount is lower is corruption: the
    /// image is refused (the LUN stays offline) rather than served.
    private func reclaimLeaks() throws {
        let cluster = UInt64(clusterSize)
        let hostClusters = Int(fileEnd / cluster)
        var uses = [UInt16](repeating: 0, count: hostClusters)
        func reference(_ offset: UInt64, _ what: String) throws {
            let index = Int(offset / cluster)
            // Past the end of the file: qemu-img would read zeros, Depot refuses.
            guard index < hostClusters else {
                throw QCOW2Error.corrupt(path: file.path, why: "\(what) at \(offset) lies past the end of the file")
            }
            uses[index] &+= 1
        }
        func span(_ offset: UInt64, bytes: UInt64, _ what: String) throws {
            var at = offset & ~(cluster - 1)
            while at < offset + bytes {
                try reference(at, what)
                at += cluster
            }
        }
        try reference(0, "the header")
        try span(header.l1TableOffset, bytes: UInt64(l1.count) * 8, "the L1 table")
        try span(header.refcountTableOffset, bytes: UInt64(refcountTable.count) * 8, "the refcount table")
        for block in refcountTable where block != 0 { try reference(block, "a refcount block") }
        for raw in l1 {
            let l2 = QCOW2L1Entry(raw: raw).l2Offset
            guard l2 != 0 else { continue }
            try reference(l2, "an L2 table")
            for entry in try l2Table(at: l2) {
                for host in references(of: QCOW2L2Entry(raw: entry, clusterBits: clusterBits)) {
                    try reference(host, "a data cluster")
                }
            }
        }
        var changed: Set<UInt64> = []
        for (blockIndex, block) in refcountTable.enumerated() where block != 0 {
            var counts = try refblock(at: block)
            for slot in 0..<refcountsPerBlock {
                let index = blockIndex * refcountsPerBlock + slot
                let count = QCOW2Refcount.get(counts, index: slot, order: header.refcountOrder)
                let used = index < hostClusters ? UInt64(uses[index]) : 0
                if count < used {
                    throw QCOW2Error.corrupt(
                        path: file.path,
                        why: "cluster \(index) is referenced \(used) time(s) but its refcount is \(count)")
                }
                if count > used {
                    QCOW2Refcount.set(&counts, index: slot, order: header.refcountOrder, to: used)
                    changed.insert(block)
                    if used == 0, index < hostClusters { file.punchHole(at: UInt64(index) * cluster, length: cluster) }
                }
            }
            refblocks[block] = counts
        }
        // A referenced cluster no refcount block covers has refcount 0.
        for index in 0..<hostClusters where uses[index] > 0 {
            let blockIndex = index / refcountsPerBlock
            if blockIndex >= refcountTable.count || refcountTable[blockIndex] == 0 {
                throw QCOW2Error.corrupt(path: file.path, why: "cluster \(index) is referenced but has no refcount")
            }
        }
        guard !changed.isEmpty else { return }
        for block in changed { try file.write(at: block, refblocks[block]!) }
        try file.sync()
        reclaimed = changed.count
    }

    /// Refcount blocks the last open corrected (leaks reclaimed).
    private(set) var reclaimed = 0

    static func probe(_ path: String) throws -> String {
        let first = try ImageFile(path: path, writable: false).read(at: 0, count: 4)
        return first == [0x51, 0x46, 0x49, 0xFB] ? "qcow2" : "raw"
    }

    static func readTable(_ file: ImageFile, at offset: UInt64, entries: Int) throws -> [UInt64] {
        guard entries > 0 else { return [] }
        var buffer = ByteBuffer(bytes: try file.read(at: offset, count: entries * 8))
        return (0..<entries).map { _ in buffer.readInteger(as: UInt64.self) ?? 0 }
    }

    static func encode(_ entries: [UInt64]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(entries.count * 8)
        for entry in entries { buffer.writeInteger(entry) }
        return Array(buffer.readableBytesView)
    }

    // MARK: Lookup (under the lock)

    func l2Table(at offset: UInt64) throws -> [UInt64] {
        l2Clock &+= 1
        if var table = l2Cache[offset] {
            table.used = l2Clock
            l2Cache[offset] = table
            return table.entries
        }
        guard offset % UInt64(clusterSize) == 0 else {
            throw QCOW2Error.corrupt(path: file.path, why: "L2 table offset \(offset) is not cluster aligned")
        }
        let entries = try Self.readTable(file, at: offset, entries: l2Entries)
        try makeRoomInCache()
        l2Cache[offset] = L2Table(entries: entries, dirty: false, used: l2Clock)
        return entries
    }

    /// Keeps the cache within its byte budget: the least recently used clean
    /// table goes; a dirty one is written first (its data made durable before).
    private func makeRoomInCache() throws {
        while (l2Cache.count + 1) * clusterSize > l2CacheBytes {
            // Not a table a flush is writing (see `writeTables`): over budget for a moment instead.
            let candidates = l2Cache.filter { !tablesInFlight.contains($0.key) }
            let clean = candidates.filter { !$0.value.dirty }
            if let victim = clean.min(by: { $0.value.used < $1.value.used }) {
                l2Cache[victim.key] = nil
                continue
            }
            guard let victim = candidates.min(by: { $0.value.used < $1.value.used }) else { return }
            try writeDirtyRefblocks()
            try file.sync()
            try file.write(at: victim.key, Self.encode(victim.value.entries))
            l2Cache[victim.key] = nil
        }
    }

    func entry(ofCluster cluster: UInt64) throws -> QCOW2L2Entry {
        let l1Index = Int(cluster / UInt64(l2Entries))
        guard l1Index < l1.count else { return .unallocated }
        let l1Entry = QCOW2L1Entry(raw: l1[l1Index])
        guard l1Entry.l2Offset != 0 else { return .unallocated }
        let table = try l2Table(at: l1Entry.l2Offset)
        return QCOW2L2Entry(raw: table[Int(cluster % UInt64(l2Entries))], clusterBits: clusterBits)
    }

    func setEntry(ofCluster cluster: UInt64, _ entry: QCOW2L2Entry) throws {
        let l1Index = Int(cluster / UInt64(l2Entries))
        guard l1Index < l1.count else {
            throw QCOW2Error.corrupt(path: file.path, why: "the L1 table does not reach cluster \(cluster)")
        }
        var l1Entry = QCOW2L1Entry(raw: l1[l1Index])
        if l1Entry.l2Offset == 0 {
            // A new L2 table: zeros on disk first, then the L1 entry (written at flush).
            let offset = try allocateCluster()
            try file.write(at: offset, [UInt8](repeating: 0, count: clusterSize))
            l1Entry = QCOW2L1Entry(l2Offset: offset, copied: true)
            l1[l1Index] = l1Entry.raw
            l1Dirty = true
            try makeRoomInCache()
            l2Cache[offset] = L2Table(entries: [UInt64](repeating: 0, count: l2Entries), dirty: false, used: l2Clock)
        } else if !l1Entry.copied {
            throw QCOW2Error.refused(path: file.path, why: "an L2 table is shared (refcount > 1)")
        }
        _ = try l2Table(at: l1Entry.l2Offset)
        l2Cache[l1Entry.l2Offset]!.entries[Int(cluster % UInt64(l2Entries))] = entry.raw(clusterBits: clusterBits)
        l2Cache[l1Entry.l2Offset]!.dirty = true
    }

    // MARK: Reading

    func read(at offset: UInt64, into: UnsafeMutableRawBufferPointer) throws {
        try readClipped(size: size, at: offset, into: into) { offset, into in
            var done = 0
            while done < into.count {
                let at = offset + UInt64(done)
                let within = Int(at & UInt64(clusterSize - 1))
                let count = min(clusterSize - within, into.count - done)
                let piece = UnsafeMutableRawBufferPointer(rebasing: into[done..<(done + count)])
                let found = try lock.withLock { try entry(ofCluster: at >> UInt64(clusterBits)) }
                try read(found, at: at, within: within, into: piece)
                done += count
            }
        }
    }

    /// The bytes of one cluster's piece as `entry` says they are.
    private func read(_ entry: QCOW2L2Entry, at: UInt64, within: Int, into: UnsafeMutableRawBufferPointer) throws {
        switch entry {
        case .unallocated:
            if let backing { try backing.read(at: at, into: into) } else { zero(into) }
        case .zero:
            zero(into)
        case .standard(let offset, _):
            try file.read(at: offset + UInt64(within), into: into)
        case .compressed(let offset, let length):
            // Bounded by the format: at most one cluster's worth of sectors and more.
            guard length > 0, length <= 2 * clusterSize + 512 else {
                throw QCOW2Error.corrupt(path: file.path, why: "a compressed cluster of \(length) bytes")
            }
            let cluster = try Inflate.cluster(try file.read(at: offset, count: length), count: clusterSize)
            cluster.withUnsafeBytes {
                into.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[within..<(within + into.count)]))
            }
        }
    }

    private func zero(_ into: UnsafeMutableRawBufferPointer) {
        if into.count > 0 { into.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: into.count) }
    }

    /// What the clusters from `offset` are, as one run: those that follow in
    /// the same L2 table in the same state (data, zeros, or nothing here) up
    /// to `limit`, in one look under the lock; a run of clusters this layer
    /// does not hold is asked of the layer below as a whole. So a deep chain
    /// answers a long extent with one question per layer, not one per
    /// cluster per layer (QEMU asks GET LBA STATUS before its first reads).
    func allocation(at offset: UInt64, limit: UInt64) throws -> (mapped: Bool, length: UInt64) {
        let cluster = UInt64(clusterSize)
        let within = offset & (cluster - 1)
        let first = offset >> UInt64(clusterBits)
        // Clusters `limit` reaches into, counting the first (a hostile size saturates).
        let (reach, over) = within.addingReportingOverflow(limit)
        let wanted = over ? UInt64.max >> UInt64(clusterBits) : (reach >> UInt64(clusterBits)) + 1
        let (kind, clusters) = try lock.withLock { () -> (RunKind, UInt64) in
            let l1Index = first / UInt64(l2Entries)
            let slot = Int(first % UInt64(l2Entries))
            let rest = UInt64(l2Entries - slot)
            guard l1Index < UInt64(l1.count) else { return (.below, wanted) }
            let l2 = QCOW2L1Entry(raw: l1[Int(l1Index)]).l2Offset
            guard l2 != 0 else { return (.below, min(wanted, rest)) }
            let table = try l2Table(at: l2)
            let end = slot + Int(min(wanted, rest))
            return table.withUnsafeBufferPointer { entries in
                let kind = RunKind(raw: entries[slot])
                var next = slot + 1
                while next < end, RunKind(raw: entries[next]) == kind { next += 1 }
                return (kind, UInt64(next - slot))
            }
        }
        let (bytes, past) = clusters.multipliedReportingOverflow(by: cluster)
        let length = max(1, min(limit, past ? UInt64.max : bytes - within))
        switch kind {
        case .data: return (true, length)
        case .zeros: return (false, length)
        case .below:
            // What lies past the layer below reads as zeros.
            guard let backing, offset < backing.size else { return (false, length) }
            return try backing.allocation(at: offset, limit: min(length, backing.size - offset))
        }
    }

    /// What a run of clusters is to GET LBA STATUS, from the raw L2 entry
    /// (qcow2.rst: bit 62 compressed, bit 0 reads as zeros, bits 9-55 the
    /// host offset, 0 = unallocated) — decoded in the scan's tight loop.
    private enum RunKind {
        case data, zeros, below

        init(raw: UInt64) {
            if raw & (1 << 62) != 0 {
                self = .data
            } else if raw & 1 != 0 {
                self = .zeros
            } else {
                self = raw & 0x00FF_FFFF_FFFF_FE00 == 0 ? .below : .data
            }
        }
    }

    // MARK: Writing

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        guard writable else { throw QCOW2Error.refused(path: file.path, why: "the layer is read-only") }
        var done = 0
        while done < bytes.count {
            let at = offset + UInt64(done)
            let within = Int(at & UInt64(clusterSize - 1))
            let count = min(clusterSize - within, bytes.count - done)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[done..<(done + count)])
            let cluster = at >> UInt64(clusterBits)
            // An overwrite of a cluster this layer owns goes straight to it.
            let owned = try lock.withLock { () -> UInt64? in
                noteWrite(cluster)
                if case .standard(let host, true) = try entry(ofCluster: cluster) { return host }
                return nil
            }
            if let owned {
                try file.write(at: owned + UInt64(within), piece)
            } else {
                try lock.withLock { try allocateAndWrite(cluster: cluster, at: at, within: within, piece) }
            }
            done += count
        }
    }

    /// Copy-on-write: the whole cluster as it reads now with `piece` laid
    /// over it, written once to a new host cluster; then the L2 entry.
    private func allocateAndWrite(cluster: UInt64, at: UInt64, within: Int, _ piece: UnsafeRawBufferPointer) throws {
        let found = try entry(ofCluster: cluster)
        if case .standard(let host, true) = found {
            // Another write allocated it meanwhile.
            try file.write(at: host + UInt64(within), piece)
            return
        }
        // Nothing below but zeros (no backing layer, or a zero cluster): the new
        // host cluster, taken past the old end of the file, reads as zeros
        // already, so only the piece is written (the file extended over the
        // whole cluster, sparse). A zero cluster that kept its host cluster
        // still has old bytes there: written whole, below.
        let zerosBelow: Bool
        switch found {
        case .unallocated: zerosBelow = backing == nil
        case .zero(let kept, let copied): zerosBelow = kept == 0 || !copied
        case .standard, .compressed: zerosBelow = false
        }
        if zerosBelow, piece.count < clusterSize {
            // Reserved clusters lie inside the file (extended over them).
            let host = try allocateCluster()
            try file.write(at: host + UInt64(within), piece)
            try setEntry(ofCluster: cluster, .standard(offset: host, copied: true))
            return
        }
        var content = [UInt8](repeating: 0, count: clusterSize)
        if piece.count < clusterSize {
            let start = at - UInt64(within)
            try content.withUnsafeMutableBytes { whole in
                if start < size {
                    let inside = Int(min(UInt64(clusterSize), size - start))
                    try read(
                        found, at: start, within: 0, into: UnsafeMutableRawBufferPointer(rebasing: whole[0..<inside]))
                }
            }
        }
        content.withUnsafeMutableBytes { whole in
            UnsafeMutableRawBufferPointer(rebasing: whole[within..<(within + piece.count)]).copyMemory(from: piece)
        }
        // A zero cluster that kept its host cluster is written in place.
        let host: UInt64
        if case .zero(let kept, true) = found, kept != 0 { host = kept } else { host = try allocateCluster() }
        try file.write(at: host, content)
        try setEntry(ofCluster: cluster, .standard(offset: host, copied: true))
        // Compressed data no longer referenced: its host clusters lose one reference each.
        if case .compressed = found { pendingFrees += references(of: found) }
    }

    /// The host clusters an entry holds one reference to each (a compressed
    /// cluster's bytes may straddle two).
    func references(of entry: QCOW2L2Entry) -> [UInt64] {
        switch entry {
        case .unallocated: return []
        case .standard(let offset, _): return [offset]
        case .zero(let offset, _): return offset == 0 ? [] : [offset]
        case .compressed(let offset, let length):
            let mask = ~UInt64(clusterSize - 1)
            return Array(stride(from: offset & mask, through: (offset + UInt64(length) - 1) & mask, by: clusterSize))
        }
    }

    /// UNMAP of whole clusters: zero clusters when a layer lies below (so
    /// its data never shows through), unallocated when none does; the host
    /// clusters are freed by the next flush. Parts of clusters are written
    /// as zeros. Version 2 images have no zero clusters: with a backing file
    /// their clusters are written as zeros instead.
    func unmap(at offset: UInt64, length: UInt64) throws {
        guard writable else { throw QCOW2Error.refused(path: file.path, why: "the layer is read-only") }
        var at = offset
        let end = offset + length
        let cluster = UInt64(clusterSize)
        while at < end {
            let within = at & (cluster - 1)
            let count = min(cluster - within, end - at)
            if within != 0 || count < cluster || (backing != nil && header.version < 3) {
                let zeros = [UInt8](repeating: 0, count: Int(count))
                try zeros.withUnsafeBytes { try write(at: at, $0) }
            } else {
                try lock.withLock {
                    let index = at >> UInt64(clusterBits)
                    noteWrite(index)
                    let old = try entry(ofCluster: index)
                    let new: QCOW2L2Entry = backing != nil ? .zero(preallocated: 0, copied: false) : .unallocated
                    if old == new { return }
                    if old == .unallocated, backing == nil { return }
                    try setEntry(ofCluster: index, new)
                    pendingFrees += references(of: old)
                }
            }
            at += count
        }
    }

    // MARK: Host clusters and refcounts (under the lock)

    func allocateCluster() throws -> UInt64 {
        if reserved.isEmpty { try reserve(reservationBatch) }
        return takeReservedCluster()!
    }

    /// A reserved host cluster, its refcount now 1 (in the cached block,
    /// written by the next flush), or nil when the file must be extended
    /// first (I/O, which the fast lane leaves to the pool).
    func takeReservedCluster() -> UInt64? {
        guard !reserved.isEmpty else { return nil }
        let host = reserved.removeFirst()
        let (blockIndex, slot) = refcountPosition(of: host)
        let block = refcountTable[blockIndex]
        QCOW2Refcount.set(&refblocks[block]!, index: slot, order: header.refcountOrder, to: 1)
        dirtyRefblocks.insert(block)
        return host
    }

    /// Extends the file by `count` clusters to take from (sparse: they read
    /// as zeros), with the refcount blocks that count them cached; a new
    /// refcount block goes after them, counting itself, durable before the
    /// refcount table names it.
    func reserve(_ count: Int) throws {
        let cluster = UInt64(clusterSize)
        let first = fileEnd
        var end = first + UInt64(count) * cluster
        let hosts = (0..<count).map { first + UInt64($0) * cluster }
        // Every reserved cluster needs a refcount block; a new one goes at
        // `end`, and needs one itself.
        var newBlocks: [UInt64] = []
        func cover(_ host: UInt64) throws {
            let (blockIndex, _) = refcountPosition(of: host)
            guard blockIndex < refcountTable.count else {
                throw QCOW2Error.refused(
                    path: file.path,
                    why: "its refcount table is full (\(refcountTable.count) blocks); Depot does not grow it yet")
            }
            guard refcountTable[blockIndex] == 0 else { return }
            let block = end
            end += cluster
            refcountTable[blockIndex] = block
            refcountTableDirty = true
            refblocks[block] = [UInt8](repeating: 0, count: clusterSize)
            newBlocks.append(block)
            try cover(block)
        }
        for host in hosts { try cover(host) }
        for host in hosts { _ = try refblock(at: refcountTable[refcountPosition(of: host).block]) }
        try file.extend(to: end)
        if refcountTableDirty {
            // New refcount blocks (counting themselves) are durable before the table names them.
            try updateRefcounts(newBlocks) { _, _ in 1 }
            try file.sync()
            try file.write(at: header.refcountTableOffset, Self.encode(refcountTable))
            refcountTableDirty = false
        }
        reserved += hosts
        fileEnd = end
    }

    /// Which refcount block (its index in the refcount table) and which slot
    /// of it count the host cluster at `host`.
    private func refcountPosition(of host: UInt64) -> (block: Int, slot: Int) {
        let index = host / UInt64(clusterSize)
        return (Int(index / UInt64(refcountsPerBlock)), Int(index % UInt64(refcountsPerBlock)))
    }

    /// Sets each host cluster's refcount to `change(host, old)` and writes
    /// every refcount block it touched once. Hosts no refcount block covers
    /// are skipped: nothing counts them.
    private func updateRefcounts(_ hosts: [UInt64], _ change: (UInt64, UInt64) throws -> UInt64) throws {
        var touched: Set<UInt64> = []
        for host in hosts {
            let (blockIndex, slot) = refcountPosition(of: host)
            guard blockIndex < refcountTable.count, refcountTable[blockIndex] != 0 else { continue }
            let block = refcountTable[blockIndex]
            var counts = try refblock(at: block)
            let old = QCOW2Refcount.get(counts, index: slot, order: header.refcountOrder)
            QCOW2Refcount.set(&counts, index: slot, order: header.refcountOrder, to: try change(host, old))
            refblocks[block] = counts
            touched.insert(block)
        }
        for block in touched { try file.write(at: block, refblocks[block]!) }
        dirtyRefblocks.subtract(touched)
    }

    /// Writes every changed refcount block (before the fdatasync that
    /// precedes a table write). On failure they stay dirty.
    func writeDirtyRefblocks() throws {
        for block in dirtyRefblocks.sorted() {
            try file.write(at: block, refblocks[block]!)
            dirtyRefblocks.remove(block)
        }
    }

    private func refblock(at offset: UInt64) throws -> [UInt8] {
        if let block = refblocks[offset] { return block }
        guard offset % UInt64(clusterSize) == 0 else {
            throw QCOW2Error.corrupt(path: file.path, why: "refcount block offset \(offset) is not cluster aligned")
        }
        let block = try file.read(at: offset, count: clusterSize)
        refblocks[offset] = block
        return block
    }

    /// One reference less for each of `hosts` (a host may repeat); returns
    /// those left with none.
    func dropReferences(_ hosts: [UInt64]) throws -> [UInt64] {
        var freed: [UInt64] = []
        try updateRefcounts(hosts) { host, count in
            guard count > 0 else {
                throw QCOW2Error.corrupt(
                    path: file.path, why: "cluster \(host / UInt64(clusterSize)) would be freed twice")
            }
            if count == 1 { freed.append(host) }
            return count - 1
        }
        return freed
    }

    // MARK: Flush and close

    /// Makes every write so far durable, in the order the type's comment gives.
    func flush() throws {
        guard writable else { return }
        try flushing.withLock { try flushUnderFlushing() }
    }

    /// `flush` for a caller already holding `flushing`.
    func flushUnderFlushing() throws {
        let frees = try writeTables()
        guard !frees.isEmpty else { return }
        let freed = try lock.withLock { try dropReferences(frees) }
        for host in freed { file.punchHole(at: host, length: UInt64(clusterSize)) }
        try file.sync()
    }

    /// Writes the refcounts, syncs, writes the dirty tables and syncs again;
    /// returns the clusters to free now that the tables are durable.
    /// Under `flushing`. A table is marked clean when taken and stays in the
    /// cache until written (`tablesInFlight`): evicted and read back from the
    /// file before the write landed, it would come back without the entries
    /// being written, and a later flush would write that older table over them.
    func writeTables() throws -> [UInt64] {
        let (tables, l1Copy, frees) = try lock.withLock { () throws -> ([(UInt64, [UInt64])], [UInt64]?, [UInt64]) in
            // The refcounts of every cluster the tables below reference.
            try writeDirtyRefblocks()
            let tables = l2Cache.filter(\.value.dirty).map { ($0.key, $0.value.entries) }
            for (offset, _) in tables { l2Cache[offset]?.dirty = false }
            tablesInFlight = Set(tables.map(\.0))
            let l1Copy = l1Dirty ? l1 : nil
            l1Dirty = false
            let frees = pendingFrees
            pendingFrees = []
            return (tables, l1Copy, frees)
        }
        defer { lock.withLock { tablesInFlight = [] } }
        do {
            try file.sync()
            for (offset, entries) in tables { try file.write(at: offset, Self.encode(entries)) }
            if let l1Copy { try file.write(at: l1Offset, Self.encode(l1Copy)) }
            if !tables.isEmpty || l1Copy != nil { try file.sync() }
        } catch {
            // Not written (or not known durable): they stay dirty for the next flush.
            lock.withLock {
                for (offset, _) in tables { l2Cache[offset]?.dirty = true }
                if l1Copy != nil { l1Dirty = true }
                pendingFrees += frees
            }
            throw error
        }
        return frees
    }

    /// Flushes, and cuts the clusters reserved but not taken off the end of
    /// the file, so a cleanly closed image ends at its last used cluster.
    func close() throws {
        guard writable, !lock.withLock({ closed }) else { return }
        try flush()
        try lock.withLock {
            guard let first = reserved.first else { return }
            // The clusters not taken at the end of the file go (a hole with
            // refcount 0; clusters before them keep their place).
            let cluster = UInt64(clusterSize)
            if reserved.last! + cluster == fileEnd, UInt64(reserved.count) * cluster == fileEnd - first {
                try file.truncate(to: first)
                fileEnd = first
            }
            reserved = []
        }
        try file.sync()
        file.unlock()
        lock.withLock { closed = true }
    }
}
