import CLibISCSI
import Foundation

/// A libiscsi initiator driven from Swift (the C library through CLibISCSI),
/// owning its context pointer.
final class LibISCSIClient {
    private let context: OpaquePointer
    private(set) var lastError = ""

    init(initiator: String) throws {
        guard let ctx = iscsi_create_context(initiator) else { throw HarnessError("iscsi_create_context failed") }
        context = ctx
        // Fail instead of reconnecting behind the test's back.
        iscsi_set_noautoreconnect(ctx, 1)
        iscsi_set_timeout(ctx, 10)
    }

    deinit { iscsi_destroy_context(context) }

    struct Credentials {
        var user: String
        var secret: String
        var mutualUser: String?
        var mutualSecret: String?
    }

    /// Logs into `target` at `portal` and reports whether the login succeeded.
    func login(portal: String, target: String, chap: Credentials? = nil, headerDigest: Bool = false) -> Bool {
        iscsi_set_targetname(context, target)
        iscsi_set_session_type(context, ISCSI_SESSION_NORMAL)
        iscsi_set_header_digest(context, headerDigest ? ISCSI_HEADER_DIGEST_CRC32C : ISCSI_HEADER_DIGEST_NONE)
        if let chap {
            iscsi_set_initiator_username_pwd(context, chap.user, chap.secret)
            if let user = chap.mutualUser, let secret = chap.mutualSecret { iscsi_set_target_username_pwd(context, user, secret) }
        }
        let ok = iscsi_full_connect_sync(context, portal, 0) == 0
        lastError = iscsi_get_error(context).map { String(cString: $0) } ?? ""
        return ok
    }

    func write(lba: UInt32, _ bytes: [UInt8], blockSize: Int32 = 512) -> Bool {
        var data = bytes
        guard let task = data.withUnsafeMutableBufferPointer({
            iscsi_write10_sync(context, 0, lba, $0.baseAddress, UInt32($0.count), blockSize, 0, 0, 0, 0, 0)
        }) else {
            lastError = iscsi_get_error(context).map { String(cString: $0) } ?? ""
            return false
        }
        defer { scsi_free_scsi_task(task) }
        return task.pointee.status == Int32(SCSI_STATUS_GOOD.rawValue)
    }

    func read(lba: UInt32, length: Int, blockSize: Int32 = 512) -> [UInt8]? {
        guard let task = iscsi_read10_sync(context, 0, lba, UInt32(length), blockSize, 0, 0, 0, 0, 0) else { return nil }
        defer { scsi_free_scsi_task(task) }
        guard task.pointee.status == Int32(SCSI_STATUS_GOOD.rawValue), let base = task.pointee.datain.data else { return nil }
        return Array(UnsafeBufferPointer(start: base, count: Int(task.pointee.datain.size)))
    }

    /// READ(10) of one block: SCSI status, sense key and ASC<<8|ASCQ.
    func probe() -> (status: Int32, key: Int32, ascq: Int32)? {
        guard let task = iscsi_read10_sync(context, 0, 0, 512, 512, 0, 0, 0, 0, 0) else { return nil }
        defer { scsi_free_scsi_task(task) }
        return (task.pointee.status, Int32(task.pointee.sense.key.rawValue), Int32(task.pointee.sense.ascq))
    }

    func lunReset() -> Bool { iscsi_task_mgmt_lun_reset_sync(context, 0) == 0 }

    func logout() { iscsi_logout_sync(context) }
}
