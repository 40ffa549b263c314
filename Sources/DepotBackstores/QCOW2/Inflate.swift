import CZlib
import DepotBlock

/// Raw deflate decompression of one qcow2 compressed cluster (qcow2.rst
/// "Compressed Clusters Descriptor": deflate without zlib header, as QEMU's
/// qcow2_co_compress writes it with window bits -12).
enum Inflate {
    /// Inflates `input` into exactly `count` bytes; fewer is a corrupt cluster.
    static func cluster(_ input: [UInt8], count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        var stream = z_stream()
        // -15: a raw stream with any window up to 32 KiB (QEMU writes -12, a smaller window).
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BlockDeviceError.io("zlib: inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        let status = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target -> Int32 in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        // The compressed bytes are followed by the rest of their last sector:
        // Z_STREAM_END, or a full output with input left over, both are fine.
        guard status == Z_STREAM_END || (status == Z_BUF_ERROR || status == Z_OK) && stream.avail_out == 0 else {
            throw BlockDeviceError.io("a compressed cluster does not inflate (zlib status \(status))")
        }
        return output
    }
}
