import DepotCore
import DepotImage
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The disk images in a pool's directory that Depot does not manage (a
/// hypervisor's own disks on an NFS datastore Depot exports), found by
/// walking the directory (subdirectories too, symlinks not followed) and
/// reading each file's metadata (`DiskImageGeometry`). They count in the
/// pool's figures: every file's allocation in used, and the virtual size of
/// each disk once in provisioned — a qcow2 backing file or VMDK parent
/// another file reads through, and a VMDK descriptor's extents, are parts of
/// that disk. A file that cannot be read is listed with the reason and
/// counts by its allocation only; nothing here is ever changed or deleted.
struct ForeignDisks: Sendable {
    var files: [ForeignDiskInfo] = []
    var provisionedBytes: UInt64 = 0
    var usedBytes: UInt64 = 0

    static let maxDepth = 8
    static let maxFiles = 10_000

    /// `managed`: names (relative to `root`) of files Depot owns there.
    static func scan(root: String, managed: Set<String>) -> ForeignDisks {
        var found: [(relative: String, st: stat)] = []
        func walk(_ relative: String, depth: Int) {
            let directory = relative.isEmpty ? root : root + "/" + relative
            guard depth <= maxDepth, let entries = try? FileManager.default.contentsOfDirectory(atPath: directory)
            else { return }
            for entry in entries.sorted() where found.count < maxFiles {
                let name = relative.isEmpty ? entry : relative + "/" + entry
                // Depot's own, and its files in the making (snapshot overlays, upload spools).
                if relative.isEmpty,
                    managed.contains(entry) || entry.hasPrefix(StorageManager.pendingPrefix)
                        || entry.hasPrefix(StorageManager.uploadPrefix)
                {
                    continue
                }
                var st = stat()
                guard lstat(root + "/" + name, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    walk(name, depth: depth + 1)
                } else if st.st_mode & S_IFMT == S_IFREG {
                    found.append((name, st))
                }
            }
        }
        walk("", depth: 0)

        var disks: [String: (info: ForeignDiskInfo, geometry: DiskImageGeometry?)] = [:]
        for (relative, st) in found {
            let path = root + "/" + relative
            let allocated = UInt64(max(st.st_blocks, 0)) * 512
            let modified = Timestamp.string(Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)))
            var format = DiskImageFormat.raw
            var geometry: DiskImageGeometry?
            var problem: String?
            do {
                let file = try ImageFileReader(path)
                format = file.format
                do { geometry = try file.geometry(format) } catch { problem = error.description }
            } catch {
                problem = error.message
            }
            let info = ForeignDiskInfo(
                path: relative, format: format.rawValue, virtualSizeBytes: geometry?.virtualSize,
                allocatedBytes: allocated, backing: geometry?.backing.first, backs: false, modifiedAt: modified,
                problem: problem)
            disks[relative] = (info, geometry)
        }
        // Files another one reads through or holds its data in: parts of that disk.
        var parts: Set<String> = []
        for (relative, disk) in disks {
            guard let geometry = disk.geometry else { continue }
            let directory = (relative as NSString).deletingLastPathComponent
            for name in geometry.backing + geometry.extents where !name.hasPrefix("/") {
                let joined = directory.isEmpty ? name : directory + "/" + name
                parts.insert((joined as NSString).standardizingPath)
            }
        }
        var result = ForeignDisks()
        for relative in disks.keys.sorted() {
            var info = disks[relative]!.info
            info.backs = parts.contains(relative)
            result.usedBytes += info.allocatedBytes
            if !info.backs, let size = info.virtualSizeBytes {
                result.provisionedBytes =
                    result.provisionedBytes.addingReportingOverflow(size).overflow
                    ? UInt64.max : result.provisionedBytes + size
            }
            result.files.append(info)
        }
        return result
    }
}
