import DepotCore
import Foundation
import Testing

/// `format` on the wire: every answer carries it, and a CLI reading a daemon
/// from before formats (no key) takes the volume as raw, as it is.
@Suite struct VolumeFormatTests {
    @Test func aVolumeWithoutFormatIsRawAndFormatRoundTrips() throws {
        let before = """
            {"pool":"p","name":"v","sizeBytes":512,"allocatedBytes":0,"provisioning":"thin","blockSize":512,
             "state":"ready","uuid":"u","path":"/x/v.img","createdAt":"t"}
            """
        let old = try JSONDecoder().decode(VolumeInfo.self, from: Data(before.utf8))
        #expect(old.format == .raw && old.progress == nil && old.luns == nil)
        var info = old
        info.format = .qcow2
        info.progress = 0.5
        let again = try JSONDecoder().decode(VolumeInfo.self, from: try JSONEncoder().encode(info))
        #expect(again == info)
        #expect(throws: DepotError.self) { try VolumeFormat(parsing: "vmdk") }
        #expect(try VolumeFormat(parsing: "qcow2").fileExtension == "qcow2")
    }
}
